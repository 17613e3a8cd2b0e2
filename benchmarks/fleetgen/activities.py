"""The day's random activities by role (act_*) and rarer, larger episodes that are still normal
(ep_*): bursts, retry storms, lockouts.

HostGen.activity_day picks them by name ("act_" + name, "ep_" + name) from its MIX and
EPISODES tables, so a method's name is its key there.
"""

from __future__ import annotations

from fleetgen.config import HOUR, MINUTE, SECOND
from fleetgen.emitter import HostGenBase
from fleetgen.vocabulary import ADMINS


class RoleActivities(HostGenBase):
    """Activities and episodes; mixed into HostGen."""

    def act_process(self, t: int) -> None:
        self.process(t)

    def act_file_read(self, t: int) -> None:
        self.file_access(t)

    def act_file_delete(self, t: int) -> None:
        self.file_access(t, reads=(1, 2), delete=True)

    def act_outbound(self, t: int) -> None:
        self.outbound(t)

    def act_blocked(self, t: int) -> None:
        self.blocked(t)

    def act_system_logon(self, t: int) -> None:
        self.system_logon(t)

    def act_service_restart(self, t: int) -> None:
        self.service_restart(t)

    def act_task(self, t: int) -> None:
        self.emit(t, "task_updated", user="SYSTEM")
        t += self.gap(50, 2_000)
        self.process(
            t, user="SYSTEM", path="C:\\Windows\\System32\\taskhostw.exe", life=(SECOND, 5 * MINUTE)
        )

    def act_crypto(self, t: int) -> None:
        user = self.default("user")
        self.emit(t, "crypto_read", user=user)
        t += self.gap(1, 30)
        self.emit(t, "crypto_op", user=user)
        if self.rng.random() < 0.3:
            self.emit(t + self.gap(1, 50), "dpapi", user=user)

    def act_new_app(self, t: int) -> None:
        """The application rolled out during the history: starts, connects, exits later."""
        user = self.user
        path = "C:\\Users\\" + user + "\\AppData\\Local\\Microsoft\\Teams\\current\\Teams.exe"
        end = self.process(t, user=user, path=path, life=(MINUTE, 2 * HOUR))
        for _ in range(self.rng.randint(1, 3)):
            t += self.gap(200, 30 * SECOND)
            if t < end:
                self.outbound(
                    t, app="\\device\\harddiskvolume2\\users\\" + user + "\\teams.exe", dport=443
                )

    def act_runas(self, t: int) -> None:
        admin = self.rng.choice(ADMINS)
        self.emit(t, "explicit_creds", user=self.user, admin=admin)
        lid = self.default("lid")
        t += self.gap(5, 200)
        self.emit(
            t,
            "logon",
            ltype=9,
            user=admin,
            lid=lid,
            ip="::1",
            src_host="-",
            lproc="seclogo",
            auth="Negotiate",
        )
        t += self.gap(0, 3)
        self.emit(t, "special_priv", user=admin, lid=lid)
        end = self.process(
            t + self.gap(10, 500), user=admin, lid=lid, path="C:\\Windows\\System32\\mmc.exe"
        )
        self.emit(end + self.gap(10, 2_000), "logoff", ltype=9, user=admin, lid=lid)

    def act_admin_logon(self, t: int) -> None:
        """IT reaching this host over the network (remote management), privileged."""
        admin = self.rng.choice(ADMINS)
        self.network_session(
            t,
            user=admin,
            admin=True,
            length=(SECOND, 3 * MINUTE),
            body=lambda s, u, ip: self.process(
                s, user=u, path="C:\\Windows\\System32\\wbem\\WmiPrvSE.exe"
            ),
        )

    def act_logon_typo(self, t: int) -> None:
        """A mistyped password, then the right one (interactive, on a workstation)."""
        lid = self.default("lid")
        self.emit(
            t, "logon_failed", ltype=2, user=self.user, ip="127.0.0.1", src_host=self.host.name
        )
        t += self.gap(3 * SECOND, 15 * SECOND)
        self.emit(t, "unlock", user=self.user, lid=lid)
        t += self.gap(1, 20)
        self.emit(
            t, "logon", ltype=7, user=self.user, lid=lid, ip="127.0.0.1", src_host=self.host.name
        )

    def act_smb_session(self, t: int) -> None:
        """A user on a share: logon, share access, some files, logoff minutes later."""

        def body(s: int, user: str, ip: str) -> int:
            share = self.default("share")
            self.emit(s, "share_access", user=user, ip=ip, share=share)
            for _ in range(self.rng.randint(1, 3)):
                s += self.gap(5, 3_000)
                self.emit(s, "share_check", user=user, ip=ip, share=share)
            for _ in range(self.rng.randint(0, 5)):
                s += self.gap(100, 60 * SECOND)
                s = self.file_access(s, user=user, path="System")
            return s

        self.network_session(t, length=(30 * SECOND, 30 * MINUTE), body=body)

    def act_kerberos(self, t: int) -> None:
        r = self.rng
        user, src = r.choice(self.users), r.choice(self.workstations)
        self.emit(t, "tgt", user=user, ip=src.ip)
        for _ in range(r.randint(1, 4)):
            t += self.gap(5, 2_000)
            self.emit(t, "service_ticket", user=user, ip=src.ip)
        if r.random() < 0.25:
            self.emit(t + self.gap(MINUTE, 4 * HOUR), "ticket_renew", user=user, ip=src.ip)

    def act_ntlm(self, t: int) -> None:
        src = self.rng.choice(self.workstations)
        user = self.rng.choice(self.users)
        self.emit(t, "cred_validate", user=user, src_host=src.name)
        if self.rng.random() < 0.5:
            self.network_session(
                t + self.gap(1, 30), user=user, src=src, length=(SECOND, 30 * SECOND)
            )

    def act_sysvol(self, t: int) -> None:
        src = self.rng.choice(self.workstations)
        user = src.name + "$"
        self.emit(t, "share_access", user=user, ip=src.ip, share="SYSVOL")
        for _ in range(self.rng.randint(1, 3)):
            t += self.gap(5, 500)
            self.emit(t, "share_check", user=user, ip=src.ip, share="SYSVOL")

    def act_ds_read(self, t: int) -> None:
        for _ in range(self.rng.randint(1, 3)):
            self.emit(t, "ds_access")
            t += self.gap(1, 300)

    def act_preauth_typo(self, t: int) -> None:
        user, src = self.rng.choice(self.users), self.rng.choice(self.workstations)
        self.emit(t, "preauth_failed", user=user, ip=src.ip)
        t += self.gap(2 * SECOND, 20 * SECOND)
        self.emit(t, "tgt", user=user, ip=src.ip)
        self.emit(t + self.gap(5, 500), "service_ticket", user=user, ip=src.ip)

    def act_ntlm_fail(self, t: int) -> None:
        user, src = self.rng.choice(self.users), self.rng.choice(self.workstations)
        self.emit(t, "cred_validate_failed", user=user, src_host=src.name)
        self.emit(
            t + self.gap(2 * SECOND, 20 * SECOND), "cred_validate", user=user, src_host=src.name
        )

    def act_net_logon_failed(self, t: int) -> None:
        user, src = self.rng.choice(self.users), self.rng.choice(self.workstations)
        self.emit(t, "logon_failed", ltype=3, user=user, ip=src.ip, src_host=src.name)
        self.network_session(
            t + self.gap(2 * SECOND, 20 * SECOND), user=user, src=src, length=(SECOND, 60 * SECOND)
        )

    def act_net_logon(self, t: int) -> None:
        self.network_session(t, length=(200, 60 * SECOND))

    def act_ds_modify(self, t: int) -> None:
        admin = self.rng.choice(ADMINS)
        for _ in range(self.rng.randint(1, 2)):
            self.emit(t, "ds_modify", admin=admin)
            t += self.gap(10, 3_000)
        if self.rng.random() < 0.5:
            self.emit(t, "account_changed", admin=admin)

    def act_app_conn(self, t: int) -> None:
        """A client calling the web application: an inbound connection, sometimes a logon."""
        r = self.rng
        src = r.choice(self.workstations)
        self.emit(
            t,
            "wfp_conn",
            app="\\device\\harddiskvolume2\\windows\\system32\\inetsrv\\w3wp.exe",
            direction="Inbound",
            dst=self.host.ip,
            dport=443,
            ip_local=src.ip,
        )
        if r.random() < 0.4:
            self.network_session(
                t + self.gap(1, 50), user=r.choice(self.users), src=src, length=(100, 5 * SECOND)
            )
        if r.random() < 0.5:
            self.outbound(
                t + self.gap(5, 200),
                app="\\device\\harddiskvolume2\\windows\\system32\\inetsrv\\w3wp.exe",
                dst=r.choice(self.sqls).ip,
                dport=1433,
            )

    def act_db_session(self, t: int) -> None:
        r = self.rng
        web = r.choice(self.webs)
        self.emit(
            t,
            "wfp_conn",
            app="\\device\\harddiskvolume2\\program files\\microsoft sql server\\mssql15.mssqlserver\\mssql\\binn\\sqlservr.exe",
            direction="Inbound",
            dst=self.host.ip,
            dport=1433,
            ip_local=web.ip,
        )
        self.network_session(
            t + self.gap(1, 30), user="svc_web", src=web, length=(SECOND, 20 * MINUTE)
        )

    def act_audit_policy(self, t: int) -> None:
        self.emit(t, "audit_policy_obj")

    # -- episodes: rarer, larger, still normal ----------------------------------------------

    def ep_software_deploy(self, t: int) -> None:
        """A software deployment: a burst of installer processes over a few minutes."""
        n = self.rng.randint(40, 140)
        for _ in range(n):
            t += self.gap(200, 3_000)
            self.process(
                t,
                user="SYSTEM",
                path=self.rng.choice(
                    [
                        "C:\\Windows\\System32\\msiexec.exe",
                        "C:\\Windows\\ccmcache\\setup.exe",
                        "C:\\Windows\\System32\\conhost.exe",
                    ]
                ),
                life=(200, 20 * SECOND),
            )
            if self.rng.random() < 0.3:
                self.file_access(
                    t + self.gap(5, 100),
                    user="SYSTEM",
                    reads=(1, 2),
                    path="C:\\Windows\\System32\\msiexec.exe",
                )

    def ep_bulk_copy(self, t: int) -> None:
        """Someone copies a folder: a burst of file handles on a file server."""
        user = self.rng.choice(self.users)
        for _ in range(self.rng.randint(40, 160)):
            t += self.gap(50, 1_500)
            t = self.file_access(t, user=user, reads=(1, 2), path="System")

    def ep_retry_storm(self, t: int) -> None:
        """An application retrying a connection the firewall blocks, every second or so."""
        app = self.default("app")
        dst = f"10.{self.rng.randrange(200, 250)}.{self.rng.randrange(256)}.{self.rng.randrange(1, 255)}"
        for _ in range(self.rng.randint(20, 80)):
            t = self.blocked(t, app=app, dst=dst) + self.gap(700, 4_000)

    def ep_stale_password(self, t: int) -> None:
        """A mapped drive or a service still using an old password: a few failures, no success."""
        user = self.rng.choice(self.users + ["svc_backup", "svc_scan"])
        src = self.rng.choice(self.workstations)
        for _ in range(self.rng.randint(3, 8)):
            self.emit(t, "logon_failed", ltype=3, user=user, ip=src.ip, src_host=src.name)
            t += self.gap(5 * SECOND, 40 * SECOND)

    def ep_lockout(self, t: int) -> None:
        """A user locks themself out; the help desk unlocks the account later."""
        user, src = self.rng.choice(self.users), self.rng.choice(self.workstations)
        for _ in range(self.rng.randint(2, 4)):
            self.emit(t, "preauth_failed", user=user, ip=src.ip)
            t += self.gap(2 * SECOND, 20 * SECOND)
        self.emit(t, "lockout", user=user, src_host=src.name)
        t += self.gap(5 * MINUTE, 40 * MINUTE)
        self.emit(t, "account_unlocked", user=user)
        t += self.gap(10 * SECOND, 5 * MINUTE)
        self.emit(t, "tgt", user=user, ip=src.ip)
