"""Read an openrc shell file (as Horizon writes them) without running it, and turn it into clouds.yaml."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Literal, overload

import yaml

from stackyard.errors import ValidationError

# --------------------------------------------------------------------------------------------------
# Parsing
# --------------------------------------------------------------------------------------------------

_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ASSIGNMENT_RE = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)=(.*)", re.DOTALL)
# Horizon: `if [ -z "$OS_REGION_NAME" ]; then unset OS_REGION_NAME; fi`
_UNSET_IF_EMPTY_RE = re.compile(
    r"""if\s+\[\s+-z\s+"?\$\{?(?P<var>[A-Za-z_][A-Za-z0-9_]*)\}?"?\s+\]\s*;\s*then\s+"""
    r"""unset\s+(?P=var)\s*;\s*fi\s*;?\s*(?:#.*)?"""
)
_READ_OPTIONS_WITH_ARGUMENT = frozenset("adinNptu")  # `read -p PROMPT`, `read -t 10`...


class OpenrcValues(dict[str, str]):
    """The variables an openrc file exports, by name; plus what it could not know without running.

    `prompted`: exported variables whose value is typed in when the file is sourced (Horizon's
    `read -sr OS_PASSWORD_INPUT; export OS_PASSWORD=$OS_PASSWORD_INPUT`), absent from the mapping.
    `unresolved`: exported variables built from something outside the file ($HOME, $(command)), absent.
    `ignored`: line numbers of statements that are neither assignments, exports, unsets nor reads.
    """

    def __init__(self) -> None:
        super().__init__()
        self.prompted: set[str] = set()
        self.unresolved: set[str] = set()
        self.ignored: list[int] = []


class _Unknown(Exception):
    """A value depends on something the file does not define; `prompted` when it comes from `read`."""

    def __init__(self, *, prompted: bool) -> None:
        super().__init__()
        self.prompted = prompted


def parse_openrc(text: str) -> OpenrcValues:
    """The exported variables of an openrc file: `export X=v`, `X=v` + `export X`, quotes, `unset`.

    `$VAR` and `${VAR}` are expanded from earlier lines of the file only; nothing is executed and the
    process environment is never read. A password read from a prompt is reported in `prompted`, not
    invented.
    """
    result = OpenrcValues()
    shell: dict[str, str] = {}  # every variable assigned so far, exported or not
    unknown: dict[str, bool] = {}  # variable -> is it from a prompt
    exported: set[str] = set()

    def assign(name: str, raw: str) -> None:
        try:
            shell[name] = _expand_word(raw, shell, unknown)
            unknown.pop(name, None)
        except _Unknown as exc:
            shell.pop(name, None)
            unknown[name] = exc.prompted

    for number, line in _logical_lines(text):
        statement = line.strip()
        if not statement or statement.startswith("#"):
            continue
        if match := _UNSET_IF_EMPTY_RE.fullmatch(statement):
            name = match["var"]
            if shell.get(name) == "" or (name not in shell and name not in unknown):
                shell.pop(name, None)
                exported.discard(name)
            continue
        words = _split_words(statement)
        if not words:
            continue
        command, rest = words[0], words[1:]
        if command == "export":
            for word in rest:
                if word.startswith("-"):
                    continue  # export -n / -p: not used by openrc files
                if match := _ASSIGNMENT_RE.fullmatch(word):
                    assign(match[1], match[2])
                    exported.add(match[1])
                elif _NAME_RE.fullmatch(word):
                    exported.add(word)
        elif command == "unset":
            for word in rest:
                shell.pop(word, None)
                unknown.pop(word, None)
                exported.discard(word)
        elif command == "read":
            for name in _read_targets(rest):
                shell.pop(name, None)
                unknown[name] = True
        elif (match := _ASSIGNMENT_RE.fullmatch(command)) and not rest:
            assign(match[1], match[2])
        elif command != "echo":
            result.ignored.append(number)
    for name in sorted(exported):
        if name in shell:
            result[name] = shell[name]
        elif name in unknown:
            (result.prompted if unknown[name] else result.unresolved).add(name)
    return result


def _logical_lines(text: str) -> Iterator[tuple[int, str]]:
    """(first line number, line) with backslash-newline continuations joined."""
    pending = ""
    start = 1
    for number, line in enumerate(text.splitlines(), start=1):
        if not pending:
            start = number
        if line.endswith("\\") and not line.endswith("\\\\"):
            pending += line[:-1]
            continue
        yield start, pending + line
        pending = ""
    if pending:
        yield start, pending


def _split_words(statement: str) -> list[str]:
    """Split on unquoted blanks, keeping quotes (expansion happens later); stop at `#`, `;`, `&&`."""
    words: list[str] = []
    current = ""
    quote: str | None = None
    i = 0
    while i < len(statement):
        char = statement[i]
        if quote:
            current += char
            if char == "\\" and quote == '"' and i + 1 < len(statement):
                current += statement[i + 1]
                i += 1
            elif char == quote:
                quote = None
        elif char in "'\"":
            quote = char
            current += char
        elif char == "\\" and i + 1 < len(statement):
            current += statement[i : i + 2]
            i += 1
        elif char in " \t":
            if current:
                words.append(current)
                current = ""
        elif char == "#" and not current:
            break
        elif char in ";&|":
            break  # one simple command per line is all an openrc needs; the rest is ignored
        else:
            current += char
        i += 1
    if current:
        words.append(current)
    return words


def _expand_word(raw: str, shell: Mapping[str, str], unknown: Mapping[str, bool]) -> str:
    """Remove quotes and expand $VAR/${VAR} like the shell would, from the file's own variables."""
    out: list[str] = []
    quote: str | None = None
    i = 0
    while i < len(raw):
        char = raw[i]
        if quote == "'":
            if char == "'":
                quote = None
            else:
                out.append(char)
        elif char == "\\":
            following = raw[i + 1 : i + 2]
            if quote == '"' and following not in ('"', "\\", "$", "`"):
                out.append(char)  # inside double quotes other backslashes are literal
            else:
                out.append(following)
                i += 1
        elif char == "'" and quote is None:
            quote = "'"
        elif char == '"':
            quote = None if quote == '"' else '"'
        elif char == "`":
            raise _Unknown(prompted=False)  # command substitution
        elif char == "$":
            value, i = _expand_variable(raw, i, shell, unknown)
            out.append(value)
            continue
        else:
            out.append(char)
        i += 1
    return "".join(out)


def _expand_variable(
    raw: str, start: int, shell: Mapping[str, str], unknown: Mapping[str, bool]
) -> tuple[str, int]:
    """The value of the `$...` starting at `start`, and the index after it."""
    rest = raw[start + 1 :]
    if rest.startswith("{"):
        end = rest.find("}")
        name, after = (rest[1:end], start + end + 2) if end > 0 else ("", len(raw))
        if not _NAME_RE.fullmatch(name):
            raise _Unknown(prompted=False)  # ${X:-default} and friends, or a typo
    elif match := _NAME_RE.match(rest):
        name, after = match[0], start + 1 + match.end()
    elif rest.startswith("("):
        raise _Unknown(prompted=False)  # $(command)
    else:
        return "$", start + 1
    if name in shell:
        return shell[name], after
    raise _Unknown(prompted=unknown.get(name, False))


def _read_targets(words: list[str]) -> list[str]:
    names: list[str] = []
    skip_next = False
    for word in words:
        if skip_next:
            skip_next = False
        elif word.startswith("-"):
            # `-sr` takes no argument; `-p PROMPT` does (also when bundled as `-sp PROMPT`)
            skip_next = word[-1] in _READ_OPTIONS_WITH_ARGUMENT and len(word) >= 2
        elif _NAME_RE.fullmatch(word):
            names.append(word)
    return names


# --------------------------------------------------------------------------------------------------
# Conversion
# --------------------------------------------------------------------------------------------------

# OS_* variable -> key inside the clouds.yaml `auth` section
_AUTH_KEYS = {
    "OS_AUTH_URL": "auth_url",
    "OS_USERNAME": "username",
    "OS_USER_ID": "user_id",
    "OS_PASSWORD": "password",
    "OS_TOKEN": "token",
    "OS_PROJECT_NAME": "project_name",
    "OS_PROJECT_ID": "project_id",
    "OS_TENANT_NAME": "project_name",  # identity v2 names, still in old openrc files
    "OS_TENANT_ID": "project_id",
    "OS_USER_DOMAIN_NAME": "user_domain_name",
    "OS_USER_DOMAIN_ID": "user_domain_id",
    "OS_PROJECT_DOMAIN_NAME": "project_domain_name",
    "OS_PROJECT_DOMAIN_ID": "project_domain_id",
    "OS_DOMAIN_NAME": "domain_name",
    "OS_DOMAIN_ID": "domain_id",
    "OS_SYSTEM_SCOPE": "system_scope",
    "OS_TRUST_ID": "trust_id",
    "OS_APPLICATION_CREDENTIAL_ID": "application_credential_id",
    "OS_APPLICATION_CREDENTIAL_NAME": "application_credential_name",
    "OS_APPLICATION_CREDENTIAL_SECRET": "application_credential_secret",
}
_SECRET_AUTH_KEYS = frozenset({"password", "token", "application_credential_secret"})
# OS_* variable -> top-level key of the cloud entry
_CLOUD_KEYS = {
    "OS_AUTH_TYPE": "auth_type",
    "OS_REGION_NAME": "region_name",
    "OS_INTERFACE": "interface",
    "OS_ENDPOINT_TYPE": "interface",
    "OS_IDENTITY_API_VERSION": "identity_api_version",
    "OS_CACERT": "cacert",
    "OS_CERT": "cert",
    "OS_KEY": "key",
}
_TRUE = frozenset({"1", "true", "yes", "on"})
_CLOUD_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]*")


def _auth_type(values: Mapping[str, str]) -> str:
    if values.get("OS_AUTH_TYPE"):
        return values["OS_AUTH_TYPE"]
    if values.get("OS_APPLICATION_CREDENTIAL_ID") or values.get("OS_APPLICATION_CREDENTIAL_NAME"):
        return "v3applicationcredential"
    if values.get("OS_TOKEN") and not values.get("OS_USERNAME"):
        return "token"
    return "password"


def credential_problems(values: Mapping[str, str]) -> list[str]:
    """What keeps these values from authenticating on their own: a prompted password, a missing secret."""
    prompted = values.prompted if isinstance(values, OpenrcValues) else set()
    unresolved = values.unresolved if isinstance(values, OpenrcValues) else set()
    auth_type = _auth_type(values)
    needed: list[str] = []
    if not values.get("OS_AUTH_URL"):
        needed.append("OS_AUTH_URL")
    if auth_type in ("password", "v3password"):
        needed += [name for name in ("OS_USERNAME", "OS_PASSWORD") if not values.get(name)]
        if values.get("OS_USER_ID"):
            needed = [name for name in needed if name != "OS_USERNAME"]
    elif auth_type in ("v3applicationcredential", "applicationcredential"):
        if not values.get("OS_APPLICATION_CREDENTIAL_SECRET"):
            needed.append("OS_APPLICATION_CREDENTIAL_SECRET")
    elif auth_type in ("token", "v3token") and not values.get("OS_TOKEN"):
        needed.append("OS_TOKEN")
    problems = []
    for name in needed:
        if name in prompted:
            problems.append(
                f"{name} is typed in at a prompt when the openrc is sourced, so it is not in the file: "
                f"add it to the cloud's auth section (in secure.yaml), or use an application credential"
            )
        elif name in unresolved:
            problems.append(f"{name} is built from something outside the openrc ($VAR or $(command))")
        else:
            problems.append(f"{name} is not set in the openrc ({auth_type} authentication needs it)")
    return problems


def _cloud_entries(values: Mapping[str, str]) -> tuple[dict[str, object], dict[str, object]]:
    """(public entry, secrets-only entry) for one cloud."""
    if not values.get("OS_AUTH_URL"):
        raise ValidationError("OS_AUTH_URL", "missing: the openrc does not export the Keystone URL")
    auth: dict[str, object] = {}
    secret_auth: dict[str, object] = {}
    for variable, key in _AUTH_KEYS.items():
        value = values.get(variable)
        if value and key not in auth and key not in secret_auth:
            (secret_auth if key in _SECRET_AUTH_KEYS else auth)[key] = value
    entry: dict[str, object] = {"auth_type": _auth_type(values), "auth": auth}
    for variable, key in _CLOUD_KEYS.items():
        value = values.get(variable)
        if value and key not in entry and key != "auth_type":
            entry[key] = value
    if isinstance(entry.get("interface"), str):
        # NOTE: identity v2-era openrc files say `publicURL`; openstacksdk wants `public`.
        entry["interface"] = str(entry["interface"]).removesuffix("URL")
    version = entry.get("identity_api_version")
    if isinstance(version, str) and version.isdigit():
        entry["identity_api_version"] = int(version)
    if values.get("OS_INSECURE", "").lower() in _TRUE:
        entry["verify"] = False
    return entry, secret_auth


@overload
def openrc_to_clouds_yaml(
    values: Mapping[str, str], name: str, *, split_secrets: Literal[False] = False
) -> str: ...
@overload
def openrc_to_clouds_yaml(
    values: Mapping[str, str], name: str, *, split_secrets: Literal[True]
) -> tuple[str, str]: ...
def openrc_to_clouds_yaml(
    values: Mapping[str, str], name: str, *, split_secrets: bool = False
) -> str | tuple[str, str]:
    """A clouds.yaml document with one cloud `name` built from openrc values.

    With `split_secrets`, returns (clouds.yaml, secure.yaml): the password, token or application-credential
    secret go to secure.yaml only, which openstacksdk merges back in by cloud name. Missing values are
    left out, never made up: check `credential_problems(values)`.
    """
    if not _CLOUD_NAME_RE.fullmatch(name):
        raise ValidationError("name", f"a cloud name is letters, digits, '.', '_' and '-'; got {name!r}")
    entry, secret_auth = _cloud_entries(values)
    if not split_secrets:
        auth = entry["auth"]
        assert isinstance(auth, dict)
        auth.update(secret_auth)
        return _dump({"clouds": {name: entry}})
    secure = _dump({"clouds": {name: {"auth": secret_auth}}})
    return _dump({"clouds": {name: entry}}), secure


def _dump(document: dict[str, object]) -> str:
    return yaml.safe_dump(document, sort_keys=False, default_flow_style=False)
