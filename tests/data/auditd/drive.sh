#!/usr/bin/env bash
# Runs as the "logged-in" session: its loginuid is 1001, so the audit rules (auid=1001) see only it.
set -u
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
echo 1001 > /proc/self/loginuid
W=/tmp/a2_audit/work
sleep 0.3
setpriv --reuid=33 --regid=33 --clear-groups sh -c 'id; uname -a' > /dev/null
setpriv --reuid=33 --regid=33 --clear-groups /bin/echo 'quoted "arg"' plain > /dev/null
sh -c "echo owned > $W/watched"
cat /etc/hostname > /dev/null
sudo -u nobody /bin/ls -la $W > /dev/null
echo wrongpass | setpriv --reuid=65534 --regid=65534 --clear-groups sudo -S -k -p '' /bin/true 2>/dev/null
su -s /bin/sh -c 'true' nobody
sleep 0.5
