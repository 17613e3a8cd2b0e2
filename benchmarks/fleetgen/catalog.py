"""The event catalog: every event the generator can write, by name.

Kept apart from the code that emits events so that the EVENTID/SEVERITY keys a benchmark can
see, and the events only incidents produce, can be read in one place.
"""

from __future__ import annotations

# name -> (EVENTID, SEVERITY, message template); {placeholders} are filled per event.
EVENTS: dict[str, tuple[str, str, str]] = {
    "logon": (
        "4624",
        "success",
        "An account was successfully logged on. Logon Type: {ltype} New Logon: Account Name: {user} Account Domain: CORP Logon ID: 0x{lid} Network Information: Workstation Name: {src_host} Source Network Address: {ip} Source Port: {port} Logon Process: {lproc} Authentication Package: {auth}",
    ),
    "logon_failed": (
        "4625",
        "failure",
        "An account failed to log on. Logon Type: {ltype} Account For Which Logon Failed: Account Name: {user} Account Domain: CORP Failure Reason: Unknown user name or bad password. Status: 0xC000006D Sub Status: 0xC000006A Workstation Name: {src_host} Source Network Address: {ip} Source Port: {port}",
    ),
    "special_priv": (
        "4672",
        "success",
        "Special privileges assigned to new logon. Account Name: {user} Account Domain: CORP Logon ID: 0x{lid} Privileges: SeSecurityPrivilege SeBackupPrivilege SeRestorePrivilege SeTakeOwnershipPrivilege SeDebugPrivilege SeImpersonatePrivilege",
    ),
    "logoff": (
        "4634",
        "success",
        "An account was logged off. Account Name: {user} Account Domain: CORP Logon ID: 0x{lid} Logon Type: {ltype}",
    ),
    "user_logoff": (
        "4647",
        "success",
        "User initiated logoff: Account Name: {user} Account Domain: CORP Logon ID: 0x{lid}",
    ),
    "explicit_creds": (
        "4648",
        "success",
        "A logon was attempted using explicit credentials. Account Name: {user} Account Whose Credentials Were Used: {admin} Target Server Name: {target} Process Name: C:\\Windows\\System32\\runas.exe",
    ),
    "proc_start": (
        "4688",
        "success",
        "A new process has been created. Creator Subject: Account Name: {user} Logon ID: 0x{lid} New Process ID: 0x{pid} New Process Name: {path} Token Elevation Type: %%1936 Creator Process Name: {parent}",
    ),
    "proc_exit": (
        "4689",
        "success",
        "A process has exited. Account Name: {user} Logon ID: 0x{lid} Process ID: 0x{pid} Process Name: {path} Exit Status: 0x0",
    ),
    "handle_req": (
        "4656",
        "success",
        "A handle to an object was requested. Account Name: {user} Object Type: File Object Name: {obj} Handle ID: 0x{hid} Process Name: {path} Accesses: ReadData (or ListDirectory)",
    ),
    "obj_access": (
        "4663",
        "success",
        "An attempt was made to access an object. Account Name: {user} Object Type: File Object Name: {obj} Handle ID: 0x{hid} Process Name: {path} Accesses: {access}",
    ),
    "handle_close": (
        "4658",
        "success",
        "The handle to an object was closed. Account Name: {user} Handle ID: 0x{hid} Process Name: {path}",
    ),
    "obj_delete": (
        "4660",
        "success",
        "An object was deleted. Account Name: {user} Handle ID: 0x{hid} Process Name: {path}",
    ),
    "wfp_bind": (
        "5158",
        "success",
        "The Windows Filtering Platform has permitted a bind to a local port. Process ID: {pidd} Application Name: {app} Source Address: 0.0.0.0 Source Port: {port} Protocol: 6",
    ),
    "wfp_conn": (
        "5156",
        "success",
        "The Windows Filtering Platform has permitted a connection. Process ID: {pidd} Application Name: {app} Direction: {direction} Source Address: {ip_local} Source Port: {port} Destination Address: {dst} Destination Port: {dport} Protocol: 6",
    ),
    "wfp_block": (
        "5157",
        "failure",
        "The Windows Filtering Platform has blocked a connection. Process ID: {pidd} Application Name: {app} Direction: Outbound Source Address: {ip_local} Destination Address: {dst} Destination Port: {dport} Protocol: 6",
    ),
    "svc_running": ("7036", "information", "The {svc} service entered the running state."),
    "svc_stopped": ("7036", "warning", "The {svc} service entered the stopped state."),
    "task_updated": (
        "4702",
        "success",
        "A scheduled task was updated. Account Name: {user} Task Name: \\Microsoft\\Windows\\{task}",
    ),
    "time_change": (
        "4616",
        "success",
        "The system time was changed. Account Name: LOCAL SERVICE Process Name: C:\\Windows\\System32\\svchost.exe Previous Time: {prev} New Time: {new}",
    ),
    "share_access": (
        "5140",
        "success",
        "A network share object was accessed. Account Name: {user} Source Address: {ip} Share Name: \\\\*\\{share} Share Path: \\??\\D:\\{share}",
    ),
    "share_check": (
        "5145",
        "success",
        "A network share object was checked to see whether client can be granted desired access. Account Name: {user} Source Address: {ip} Share Name: \\\\*\\{share} Relative Target Name: {rel}",
    ),
    "crypto_read": (
        "5058",
        "success",
        "Key file operation. Account Name: {user} Provider Name: Microsoft Software Key Storage Provider Key Name: {key} Operation: Read persisted key from file.",
    ),
    "crypto_op": (
        "5061",
        "success",
        "Cryptographic operation. Account Name: {user} Provider Name: Microsoft Software Key Storage Provider Algorithm Name: RSA Key Name: {key} Operation: Open Key.",
    ),
    "dpapi": (
        "4692",
        "success",
        "Backup of data protection master key was attempted. Account Name: {user} Key Identifier: {guid}",
    ),
    "lock": (
        "4800",
        "success",
        "The workstation was locked. Account Name: {user} Logon ID: 0x{lid}",
    ),
    "unlock": (
        "4801",
        "success",
        "The workstation was unlocked. Account Name: {user} Logon ID: 0x{lid}",
    ),
    "tgt": (
        "4768",
        "success",
        "A Kerberos authentication ticket (TGT) was requested. Account Name: {user} Service Name: krbtgt Client Address: ::ffff:{ip} Result Code: 0x0 Ticket Encryption Type: 0x12",
    ),
    "service_ticket": (
        "4769",
        "success",
        "A Kerberos service ticket was requested. Account Name: {user}@CORP.EXAMPLE Service Name: {spn} Client Address: ::ffff:{ip} Failure Code: 0x0",
    ),
    "ticket_renew": (
        "4770",
        "success",
        "A Kerberos service ticket was renewed. Account Name: {user}@CORP.EXAMPLE Service Name: {spn} Client Address: ::ffff:{ip}",
    ),
    "preauth_failed": (
        "4771",
        "failure",
        "Kerberos pre-authentication failed. Account Name: {user} Service Name: krbtgt/CORP Client Address: ::ffff:{ip} Failure Code: 0x18",
    ),
    "cred_validate": (
        "4776",
        "success",
        "The computer attempted to validate the credentials for an account. Authentication Package: MICROSOFT_AUTHENTICATION_PACKAGE_V1_0 Logon Account: {user} Source Workstation: {src_host} Error Code: 0x0",
    ),
    "cred_validate_failed": (
        "4776",
        "failure",
        "The computer attempted to validate the credentials for an account. Authentication Package: MICROSOFT_AUTHENTICATION_PACKAGE_V1_0 Logon Account: {user} Source Workstation: {src_host} Error Code: 0xC000006A",
    ),
    "ds_access": (
        "4662",
        "success",
        "An operation was performed on an object. Account Name: {user} Object Server: DS Operation Type: Object Access Object Type: {dsclass} Object Name: {dn} Accesses: Read Property",
    ),
    "ds_modify": (
        "5136",
        "success",
        "A directory service object was modified. Account Name: {admin} DN: {dn} Class: {dsclass} LDAP Display Name: {attr} Operation Type: Value Added",
    ),
    "account_changed": (
        "4738",
        "success",
        "A user account was changed. Subject: Account Name: {admin} Target Account: Account Name: {user} Account Domain: CORP",
    ),
    "lockout": (
        "4740",
        "success",
        "A user account was locked out. Subject: Account Name: {dc}$ Account That Was Locked Out: Account Name: {user} Caller Computer Name: {src_host}",
    ),
    "account_unlocked": (
        "4767",
        "success",
        "A user account was unlocked. Subject: Account Name: {admin} Target Account: Account Name: {user}",
    ),
    "repl_begin": (
        "4932",
        "success",
        "Synchronization of a replica of an Active Directory naming context has begun. Destination DRA: {dc} Source DRA: {dc2} Naming Context: DC=corp,DC=example Options: 0x{hid}",
    ),
    "repl_end": (
        "4933",
        "success",
        "Synchronization of a replica of an Active Directory naming context has ended. Destination DRA: {dc} Source DRA: {dc2} Naming Context: DC=corp,DC=example Status Code: 0",
    ),
    "audit_policy_obj": (
        "4907",
        "success",
        "Auditing settings on object were changed. Account Name: {admin} Object Type: File Object Name: {obj} Process Name: C:\\Windows\\explorer.exe",
    ),
    "log_service_shutdown": ("1100", "information", "The event logging service has shut down."),
    "os_start": ("4608", "success", "Windows is starting up."),
    "boot_config": (
        "4826",
        "success",
        "Boot Configuration Data loaded. Load Options: - Advanced Options: No Configuration Access Policy: Default Kernel Debugging: No Integrity Checks: Enabled",
    ),
    "fw_driver": ("5033", "success", "The Windows Firewall Driver started successfully."),
    "fw_service": ("5024", "success", "The Windows Firewall service started successfully."),
    # Incidents only: these event ids never occur in normal data.
    "log_cleared": (
        "1102",
        "success",
        "The audit log was cleared. Subject: Account Name: {user} Domain Name: CORP Logon ID: 0x{lid}",
    ),
    "user_created": (
        "4720",
        "success",
        "A user account was created. Subject: Account Name: {user} Logon ID: 0x{lid} New Account: Account Name: {newuser} Account Domain: CORP",
    ),
    "group_member_added": (
        "4732",
        "success",
        "A member was added to a security-enabled local group. Subject: Account Name: {user} Member: Account Name: CORP\\{newuser} Group: Group Name: Administrators",
    ),
    "service_installed": (
        "7045",
        "information",
        "A service was installed in the system. Service Name: {svcname} Service File Name: {svcpath} Service Type: user mode service Service Start Type: auto start Service Account: LocalSystem",
    ),
    "task_created": (
        "4698",
        "success",
        "A scheduled task was created. Account Name: {user} Logon ID: 0x{lid} Task Name: \\{taskname}",
    ),
}
UNSEEN_EVENT_NAMES = ("log_cleared", "user_created", "service_installed", "task_created")
INCIDENT_ONLY = frozenset(
    {"log_cleared", "user_created", "group_member_added", "service_installed", "task_created"}
)
