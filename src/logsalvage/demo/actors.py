"""Who appears in the logs: hosts, the attacker's address blocks, clients, scanners, agents.

The address blocks are synthetic picks that look like the incident's (a 79.x range for A);
they are not attributions to the real holders of those ranges.
"""

from __future__ import annotations

import random

WEB01 = "192.168.10.11"
DB01 = "192.168.10.21"
DBA_HOST = "192.168.10.50"           # the DBA's workstation (psql, reporting)
SSH_ADMIN_HOST = "10.0.0.5"          # the maintenance company's VPN address for ssh
MAINTENANCE = "153.156.83.40"        # the maintenance company's public address (FTP)
DOMAIN = "www.kyushoferry.example"
FTP_USER = "kyushoferry"             # guessable from the domain: the incident's weakness
DOWNLOAD_DOMAIN = "dl.mirror-cdn.example"
DOWNLOAD_ADDRESS = "203.0.113.5"

BLOCKS = {"A": "79.172.212.0/24", "B": "185.61.138.0/24", "C": "46.166.148.0/24"}
A_ADDRESSES = ("79.172.212.37", "79.172.212.118")
B_ADDRESSES = ("185.61.138.19", "185.61.138.203")
C_ADDRESSES = ("46.166.148.12", "46.166.148.77", "46.166.148.133", "46.166.148.201",
               "46.166.148.58", "46.166.148.240")

# Japanese access networks (first octets), for the reservation site's customers
_JP_FIRST = (60, 61, 106, 110, 111, 114, 118, 119, 121, 122, 124, 125, 126, 133, 153, 180,
             182, 183, 210, 211, 218, 219, 220, 221, 222)
_SCANNER_PREFIXES = ((58, 218), (61, 177), (112, 85), (221, 194), (5, 188), (185, 100),
                     (104, 131), (139, 59), (45, 55), (91, 200), (37, 49), (191, 96),
                     (177, 54), (94, 102), (195, 22), (212, 83), (118, 193), (36, 110))

BROWSERS = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 10_3_2 like Mac OS X) AppleWebKit/603.2.4 (KHTML, like Gecko) Version/10.0 Mobile/14F89 Safari/602.1",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 11_1_2 like Mac OS X) AppleWebKit/604.3.5 (KHTML, like Gecko) Version/11.0 Mobile/15B202 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 7.0; SO-01J Build/37.1.C.0.372) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/60.0.3112.116 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 6.0.1; SC-02H Build/MMB29K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/58.0.3029.83 Mobile Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/61.0.3163.100 Safari/537.36",
    "Mozilla/5.0 (Windows NT 6.1; WOW64; Trident/7.0; rv:11.0) like Gecko",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:57.0) Gecko/20100101 Firefox/57.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_12_6) AppleWebKit/603.3.8 (KHTML, like Gecko) Version/10.1.2 Safari/603.3.8",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
)
SCANNER_AGENTS = (
    "Mozilla/5.0 Jorgee", "ZmEu", "Mozilla/5.0 (compatible; Nmap Scripting Engine; https://nmap.org/book/nse.html)",
    "python-requests/2.18.4", "-", "Mozilla/5.0 (Windows NT 6.1; rv:34.0) Gecko/20100101 Firefox/34.0",
    "Mozilla/5.0 (compatible; MSIE 9.0; Windows NT 6.1; Trident/5.0)", "Go-http-client/1.1",
)
SHELL_AGENTS = (
    "Mozilla/5.0 (Windows NT 6.1; rv:52.0) Gecko/20100101 Firefox/52.0", "curl/7.47.0",
    "Wget/1.17.1 (linux-gnu)", "-", "python-requests/2.12.4",
)
SQLMAP_AGENT = "sqlmap/1.1.6#stable (http://sqlmap.org)"


def jp_client(rng: random.Random) -> str:
    return f"{rng.choice(_JP_FIRST)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"


def scanner(rng: random.Random) -> str:
    a, b = rng.choice(_SCANNER_PREFIXES)
    return f"{a}.{b}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
