"""The names message placeholders are drawn from: users, admins, processes, services, shares,
files, scheduled tasks, SPNs, directory classes, and the malicious binaries of incidents.

Lists, not sets: the generator draws from them with its seeded random stream, so their order
is part of the data (reordering one changes every fleet).
"""

from __future__ import annotations

FIRST_NAMES = [
    "anna",
    "ben",
    "carla",
    "dev",
    "elif",
    "farid",
    "grace",
    "hugo",
    "ines",
    "jon",
    "kemal",
    "lena",
    "mateo",
    "nora",
    "omar",
    "priya",
    "quinn",
    "rosa",
    "sven",
    "tara",
    "umar",
    "vera",
    "wei",
    "xena",
    "yusuf",
    "zoe",
]
ADMINS = ["adm-jdoe", "adm-mrossi", "adm-kchen", "adm-helpdesk"]
USER_PROCS = [
    "C:\\Program Files\\Microsoft Office\\root\\Office16\\OUTLOOK.EXE",
    "C:\\Program Files\\Microsoft Office\\root\\Office16\\EXCEL.EXE",
    "C:\\Program Files\\Microsoft Office\\root\\Office16\\WINWORD.EXE",
    "C:\\Program Files (x86)\\Microsoft\\Edge\\Application\\msedge.exe",
    "C:\\Windows\\explorer.exe",
    "C:\\Windows\\System32\\notepad.exe",
    "C:\\Windows\\System32\\cmd.exe",
    "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe",
    "C:\\Program Files\\7-Zip\\7zFM.exe",
]
SYSTEM_PROCS = [
    "C:\\Windows\\System32\\svchost.exe",
    "C:\\Windows\\System32\\conhost.exe",
    "C:\\Windows\\System32\\taskhostw.exe",
    "C:\\Windows\\System32\\wbem\\WmiPrvSE.exe",
    "C:\\Windows\\System32\\backgroundTaskHost.exe",
    "C:\\Windows\\System32\\RuntimeBroker.exe",
    "C:\\Windows\\System32\\dllhost.exe",
]
SERVICES = [
    "Windows Update",
    "Background Intelligent Transfer Service",
    "Print Spooler",
    "Windows Time",
    "WinHTTP Web Proxy Auto-Discovery Service",
    "Windows Modules Installer",
    "Software Protection",
    "Windows Defender Antivirus Service",
    "Volume Shadow Copy",
    "Microsoft Software Shadow Copy Provider",
    "Network List Service",
    "DNS Client",
]
SHARES = ["Finance", "HR", "Projects", "Public", "Scans", "Engineering", "Sales", "IT$"]
FILES = [
    "Q1-report.xlsx",
    "budget.xlsx",
    "minutes.docx",
    "contract.pdf",
    "roadmap.pptx",
    "notes.txt",
    "invoice-{n}.pdf",
    "scan-{n}.pdf",
    "build-{n}.zip",
    "data-{n}.csv",
]
TASKS = [
    "UpdateOrchestrator\\Schedule Scan",
    "WindowsUpdate\\Scheduled Start",
    "Defrag\\ScheduledDefrag",
    "Diagnosis\\Scheduled",
    "Time Synchronization\\SynchronizeTime",
    "Application Experience\\ProgramDataUpdater",
]
SPNS = [
    "cifs/FS-{n}.corp.example",
    "HTTP/web-{n}.corp.example",
    "MSSQLSvc/sql-{n}.corp.example:1433",
    "ldap/dc-{n}.corp.example",
    "host/wks-{n}.corp.example",
]
DS_CLASSES = ["user", "group", "groupPolicyContainer", "computer", "organizationalUnit"]
ATTRS = ["description", "member", "userAccountControl", "servicePrincipalName", "gPLink"]
BAD_PROCS = [
    "C:\\Users\\Public\\svch0st.exe",
    "C:\\Windows\\Temp\\upd.exe",
    "C:\\ProgramData\\rundll64.exe",
    "C:\\Users\\Public\\Libraries\\msupd.exe",
]
