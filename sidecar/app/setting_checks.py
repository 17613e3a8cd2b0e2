"""Checks across settings, and one-line messages for bad ones that name the variable and never
echo a secret."""

from __future__ import annotations

from pydantic import ValidationError

__all__ = ["ENV_PREFIX", "check_partitions", "describe_validation_error", "url_without_userinfo"]

ENV_PREFIX = "SIDECAR_"

_SECRET_FIELDS = {"password", "api_key", "cluster_urls", "notify_authorization", "notify_url"}


def url_without_userinfo(url: str) -> str:
    """Credentials embedded in a URL (https://user:pass@host) are secrets too."""
    scheme, sep, rest = url.partition("://")
    if sep and "@" in rest.split("/", 1)[0]:
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url


def describe_validation_error(error: ValidationError) -> str:
    """One line per problem, naming the environment variable and never echoing a secret."""
    lines = []
    for problem in error.errors():
        loc = [str(part) for part in problem.get("loc", ()) if not isinstance(part, int)]
        message = problem.get("msg", "invalid value").removeprefix("Value error, ")
        if loc:
            variable = ENV_PREFIX + loc[0].upper()
            shown = ""
            if loc[0] not in _SECRET_FIELDS and "input" in problem:
                value = problem["input"]
                if isinstance(value, str | int | float):
                    shown = f" (got {str(value)[:80]!r})"
            lines.append(f"{variable}: {message}{shown}")
        else:
            lines.append(message)
    return "; ".join(lines)


# Result indices readers find as "<base>*" (sidecar/cluster/partitions.py).
_PARTITIONED = ("ANOMALY_INDEX", "INCIDENT_INDEX", "DEAD_LETTER_INDEX")


def check_partitions(
    partition: str, retention_days: int, retention_by: str, names: dict[str, str]
) -> None:
    """Raises ValueError unless the index names, partitions and retention fit together."""
    seen: dict[str, str] = {}
    for variable, name in names.items():
        if name in seen:
            raise ValueError(f"SIDECAR_{variable} and SIDECAR_{seen[name]} must differ")
        seen[name] = variable
    if retention_by != "sidecar" and not (retention_days and partition != "none"):
        raise ValueError(
            f"SIDECAR_RETENTION_BY={retention_by} needs SIDECAR_RETENTION_DAYS above 0 "
            "and SIDECAR_RESULT_PARTITION day or month"
        )
    if retention_by == "ilm" and partition != "day":
        # ILM reads an index's age from a yyyy.MM.dd date at the end of its name.
        raise ValueError("SIDECAR_RETENTION_BY=ilm needs SIDECAR_RESULT_PARTITION=day")
    if partition == "none":
        return
    for variable in _PARTITIONED:
        base = names[variable]
        for other, name in names.items():
            if other != variable and name.startswith(base):
                raise ValueError(
                    f"SIDECAR_{other} {name!r} starts with SIDECAR_{variable} {base!r}, whose "
                    f"partitions are read as '{base}*'; choose names that do not"
                )
