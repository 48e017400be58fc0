"""Operating-system and client-software hints from text hosts send about themselves.

Each function takes one wire string and returns a short name, or None when the text
states nothing recognisable. The text itself travels with the claim as evidence, so
an analyst can judge the hint. Only what the string states is used: an OpenSSH banner
without a distribution comment says nothing about the OS.
"""

from __future__ import annotations

import re
from typing import Final

# Windows (major, minor) as NT kernels report them (NetBIOS browser announcements, NTLM
# VERSION, SMB native OS strings).
_WINDOWS: Final = {
    (4, 0): "Windows NT 4.0",
    (5, 0): "Windows 2000",
    (5, 1): "Windows XP",
    (5, 2): "Windows XP x64 / Server 2003",
    (6, 0): "Windows Vista / Server 2008",
    (6, 1): "Windows 7 / Server 2008 R2",
    (6, 2): "Windows 8 / Server 2012",
    (6, 3): "Windows 8.1 / Server 2012 R2",
}
# Windows 10 and later share 10.0; the build number tells them apart.
_WIN10_BUILDS: Final = (
    (26100, "Windows 11 24H2 / Server 2025"),
    (22000, "Windows 11"),
    (20348, "Windows Server 2022"),
    (17763, "Windows 10 1809 / Server 2019"),
    (14393, "Windows 10 1607 / Server 2016"),
    (10240, "Windows 10"),
)


def windows_version(major: int, minor: int, build: int | None = None) -> str | None:
    """The Windows release a (major, minor[, build]) version names, None if unknown."""
    if (major, minor) == (10, 0):
        if build:
            for first, name in _WIN10_BUILDS:
                if build >= first:
                    return name
        return "Windows 10 / Server 2016 or later"
    return _WINDOWS.get((major, minor))


# OpenSSH package revisions of distribution releases (the banner's comment field).
_SSH_RELEASES: Final = {
    ("OpenSSH_7.2p2", "Ubuntu-4"): "Ubuntu 16.04",
    ("OpenSSH_7.6p1", "Ubuntu-4"): "Ubuntu 18.04",
    ("OpenSSH_8.2p1", "Ubuntu-4"): "Ubuntu 20.04",
    ("OpenSSH_8.9p1", "Ubuntu-3"): "Ubuntu 22.04",
    ("OpenSSH_9.6p1", "Ubuntu-3"): "Ubuntu 24.04",
    ("OpenSSH_7.4p1", "Debian-10"): "Debian 9",
    ("OpenSSH_7.9p1", "Debian-10"): "Debian 10",
    ("OpenSSH_8.4p1", "Debian-5"): "Debian 11",
    ("OpenSSH_9.2p1", "Debian-2"): "Debian 12",
}
_SSH_WORDS: Final = (
    ("raspbian", "Raspbian"),
    ("ubuntu", "Ubuntu"),
    ("debian", "Debian"),
    ("freebsd", "FreeBSD"),
    ("netbsd", "NetBSD"),
    ("for_windows", "Windows"),
    ("rosssh", "MikroTik RouterOS"),
    ("cisco-", "Cisco IOS"),
    ("huawei-", "Huawei VRP"),
)


def ssh_os(software: str, comments: str) -> str | None:
    """OS from an SSH identification string's software version and comments."""
    release = comments.split(" ", 1)[0]
    for (sw, rev), name in _SSH_RELEASES.items():
        if software == sw and release.startswith(rev):
            return name
    hay = f"{software} {comments}".lower()
    for word, name in _SSH_WORDS:
        if word in hay:
            return name
    return None


_UA_OS: Final = (
    (re.compile(r"Windows NT (\d+)\.(\d+)"), "windows"),
    (re.compile(r"Windows Phone (?:OS )?([\d.]+)"), "Windows Phone {0}"),
    (re.compile(r"Android (\d+(?:\.\d+)?)"), "Android {0}"),
    (re.compile(r"iPhone OS (\d+)[_.](\d+)"), "iOS {0}.{1}"),
    (re.compile(r"iPad; CPU OS (\d+)[_.](\d+)"), "iPadOS {0}.{1}"),
    (re.compile(r"Mac OS X (\d+)[_.](\d+)"), "macOS {0}.{1}"),
    (re.compile(r"CrOS "), "ChromeOS"),
    (re.compile(r"Ubuntu"), "Ubuntu"),
    (re.compile(r"Fedora"), "Fedora"),
    (re.compile(r"Linux"), "Linux"),
    (re.compile(r"FreeBSD"), "FreeBSD"),
    (re.compile(r"^Microsoft-CryptoAPI/(\d+)\.(\d+)"), "windows"),
    (re.compile(r"^Windows-Update-Agent"), "Windows"),
)
_UA_BROWSER: Final = (
    re.compile(r"(Edg|EdgA|EdgiOS)/(\d+)"),
    re.compile(r"(OPR)/(\d+)"),
    re.compile(r"(Firefox)/(\d+)"),
    re.compile(r"(Chromium)/(\d+)"),
    re.compile(r"(Chrome|CriOS)/(\d+)"),
    re.compile(r"Version/(\d+)[\d.]* (?:Mobile/\S+ )?(Safari)/"),
    re.compile(r"(MSIE) (\d+)"),
    re.compile(r"(Trident)/7"),
    re.compile(r"^(curl|Wget|python-requests|Python-urllib|Go-http-client|okhttp|Java)/(\d+)"),
)
_BROWSER_NAMES: Final = {
    "Edg": "Edge",
    "EdgA": "Edge",
    "EdgiOS": "Edge",
    "OPR": "Opera",
    "CriOS": "Chrome",
    "MSIE": "Internet Explorer",
    "Trident": "Internet Explorer",
}


def user_agent_os(ua: str) -> str | None:
    """OS a User-Agent states (Windows by NT version, Android, iOS, macOS, Linux ...)."""
    for pattern, name in _UA_OS:
        m = pattern.search(ua)
        if m is None:
            continue
        if name == "windows":
            major, minor = int(m.group(1)), int(m.group(2))
            return windows_version(major, minor) or f"Windows NT {major}.{minor}"
        return name.format(*m.groups())
    return None


def user_agent_browser(ua: str) -> str | None:
    """The browser or HTTP client a User-Agent names, with its major version."""
    for pattern in _UA_BROWSER:
        m = pattern.search(ua)
        if m is None:
            continue
        groups = m.groups()
        if pattern.pattern.startswith("Version/"):
            return f"Safari {groups[0]}"
        if groups[0] == "Trident":
            return "Internet Explorer 11"
        return f"{_BROWSER_NAMES.get(groups[0], groups[0])} {groups[1]}"
    return None


_SERVER_OS: Final = (
    (re.compile(r"Microsoft-IIS/(\d+)\.(\d+)"), "Windows"),
    (re.compile(r"Microsoft-HTTPAPI/"), "Windows"),
    (re.compile(r"\(Win(?:32|64)\)"), "Windows"),
    (re.compile(r"\(Ubuntu\)|Ubuntu"), "Ubuntu"),
    (re.compile(r"\(Debian\)|Debian"), "Debian"),
    (re.compile(r"\(CentOS\)"), "CentOS"),
    (re.compile(r"\(Red Hat(?: Enterprise Linux)?\)"), "Red Hat Enterprise Linux"),
    (re.compile(r"\(Fedora\)"), "Fedora"),
    (re.compile(r"\(FreeBSD\)"), "FreeBSD"),
)


def http_server_os(server: str) -> str | None:
    """OS an HTTP ``Server`` header states (``Apache/2.4.52 (Ubuntu)``, IIS)."""
    for pattern, name in _SERVER_OS:
        if pattern.search(server):
            return name
    return None


_DHCP_VENDOR: Final = (
    (re.compile(r"^MSFT 5\.0"), "Windows"),
    (re.compile(r"^MSFT 98"), "Windows 98/Me"),
    (re.compile(r"^android-dhcp-(\d+)"), "Android {0}"),
    (re.compile(r"^dhcpcd-[\d.]+:Linux-([\d.]+)"), "Linux {0}"),
    (re.compile(r"^dhcpcd-[\d.]+:NetBSD-([\d.]+)"), "NetBSD {0}"),
    (re.compile(r"^dhcpcd"), "Linux"),
    (re.compile(r"^udhcp"), "Linux (BusyBox)"),
    (re.compile(r"^Linux"), "Linux"),
)


def dhcp_vendor_os(vendor_class: str) -> str | None:
    """OS a DHCP vendor class identifier (option 60) states."""
    for pattern, name in _DHCP_VENDOR:
        m = pattern.search(vendor_class)
        if m is not None:
            return name.format(*m.groups())
    return None


_DESC_OS: Final = (
    (re.compile(r"Cisco IOS XE Software.*?Version ([\w.()]+)", re.S), "Cisco IOS XE {0}"),
    (re.compile(r"Cisco IOS XR Software.*?Version ([\w.()]+)", re.S), "Cisco IOS XR {0}"),
    (re.compile(r"Cisco NX-OS.*?Version ([\w.()]+)", re.S), "Cisco NX-OS {0}"),
    (re.compile(r"Cisco Adaptive Security Appliance.*?Version ([\w.()]+)", re.S), "Cisco ASA {0}"),
    (re.compile(r"Cisco IOS Software.*?Version ([\w.()]+)", re.S), "Cisco IOS {0}"),
    (
        re.compile(r"Cisco Internetwork Operating System.*?Version ([\w.()]+)", re.S),
        "Cisco IOS {0}",
    ),
    (re.compile(r"\bJUNOS ([\w.-]+)", re.I), "Junos {0}"),
    (re.compile(r"Arista Networks EOS version ([\w.]+)"), "Arista EOS {0}"),
    (re.compile(r"RouterOS"), "MikroTik RouterOS"),
    (re.compile(r"\bLinux [\w.-]+ (\d+\.\d+[\w.-]*)"), "Linux {0}"),
    (re.compile(r"\bLinux\b"), "Linux"),
    (re.compile(r"Windows"), "Windows"),
)


def description_os(description: str) -> str | None:
    """OS a device description states (LLDP system description, CDP software version)."""
    for pattern, name in _DESC_OS:
        m = pattern.search(description)
        if m is not None:
            return name.format(*m.groups())
    return None


_NATIVE_WIN: Final = re.compile(r"^Windows (\d+)\.(\d+)$")


def smb_native_os(native_os: str, native_lanman: str = "") -> str | None:
    """OS an SMB1 session setup's NativeOS (and NativeLanMan) string states."""
    if "Samba" in native_lanman:  # Samba servers call themselves "Windows 6.1"
        return f"Unix ({native_lanman})"
    m = _NATIVE_WIN.match(native_os)
    if m is not None:
        return windows_version(int(m.group(1)), int(m.group(2))) or native_os
    return native_os or None
