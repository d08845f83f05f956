#!/usr/bin/env bash
# Headless Chromium for tests/report/test_report_in_browser.py, which loads a report full of
# attacker-supplied markup and checks that nothing in it runs (Playwright, from the test extra,
# drives this system browser; it downloads no browser of its own). A font so text renders.
exec "$(dirname "$0")/apt-install.sh" install-browser.sh chromium fonts-dejavu-core
