"""Turn pip's output after a failed run into one line a user can act on.

pip prints long, nested reports (a build-dependency install runs a second pip whose output is
embedded in the first). We scan the whole text for a few well-known signatures, most specific
first, and name the package or the network problem.
"""

from __future__ import annotations

import re
import urllib.error
import urllib.request

# Low-level messages from urllib3/socket that mean "the index could not be reached at all".
_NETWORK_SIGNATURES = (
    "NewConnectionError",
    "Failed to establish a new connection",
    "Temporary failure in name resolution",
    "Name or service not known",
    "nodename nor servname provided",
    "getaddrinfo failed",
    "Network is unreachable",
    "No route to host",
    "Connection refused",
    "ConnectTimeoutError",
    "ReadTimeoutError",
    "Read timed out",
    "ProxyError",
    "SSLError",
    "CERTIFICATE_VERIFY_FAILED",
    "Could not fetch URL",
    "RemoteDisconnected",
    "Connection reset by peer",
)

_NOT_FOUND = re.compile(
    r"Could not find a version that satisfies the requirement (?P<req>\S+)"
    r"(?: \(from versions: (?P<versions>[^)]*)\))?"
)
_NO_MATCH = re.compile(r"No matching distribution found for (?P<req>\S+)")
_BUILD_FAILED = (
    re.compile(r"Failed building wheel for (?P<name>\S+)"),
    re.compile(r"Could not build wheels for (?P<name>.+?), which is required"),
    re.compile(r"Failed to build installable wheels for some pyproject\.toml based projects \((?P<name>.+?)\)"),
    re.compile(r"Building wheel for (?P<name>\S+) \(pyproject\.toml\) did not run successfully"),
    re.compile(r"Failed to build '?(?P<name>[A-Za-z0-9._-]+)'?"),
)
_SUBPROCESS_FAILED = "subprocess-exited-with-error"
_COLLECTING = re.compile(r"^\s*(?:Collecting|Obtaining) (?P<name>\S+)", re.MULTILINE)
_CONFLICT = re.compile(r"Cannot install (?P<what>.+?) because these package versions have conflicting")
_RESOLUTION_IMPOSSIBLE = re.compile(r"ResolutionImpossible")
_OSERROR = re.compile(r"Could not install packages due to an OSError: (?P<msg>.+)")
_HASH = re.compile(r"THESE PACKAGES DO NOT MATCH THE HASHES")
_REQUIRES_PYTHON = re.compile(r"requires a different Python: (?P<msg>.+)")
_NETWORK_DETAIL = re.compile(
    r"(Connection refused|Temporary failure in name resolution|Name or service not known|"
    r"Network is unreachable|No route to host|timed out|CERTIFICATE_VERIFY_FAILED|ProxyError)"
)


def _tail(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def network_problem(output: str) -> str | None:
    """A short description of the network failure pip reported, if any."""
    if not any(sig in output for sig in _NETWORK_SIGNATURES):
        return None
    detail = _NETWORK_DETAIL.search(output)
    return detail.group(1) if detail else "connection failed"


def probe_index(url: str, timeout: float = 5.0) -> str | None:
    """Why the index at `url` cannot be reached, or None if it answers (any HTTP status counts).

    pip hides the connection errors of a build-dependency install when it does not retry, leaving
    only "from versions: none"; asking the index ourselves tells that apart from a missing package.
    """
    if not url.startswith(("http://", "https://")):
        return None
    try:
        urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=timeout).close()  # noqa: S310
    except urllib.error.HTTPError:
        return None
    except urllib.error.URLError as exc:
        return str(getattr(exc, "reason", exc))
    except OSError as exc:  # timeouts, resets
        return str(exc) or type(exc).__name__
    return None


def explain(output: str, index_url: str, unreachable: str | None = None) -> str:
    """One line for a failed pip run, from its combined output and `probe_index(index_url)`."""
    net = network_problem(output) or unreachable
    not_found = _NOT_FOUND.search(output) or _NO_MATCH.search(output)
    if net is not None and (not_found is not None or "Retrying" in output or "Could not fetch" in output):
        return (
            f"cannot reach the package index {index_url} ({net}); check the internet connection "
            "or proxy settings (HTTPS_PROXY, PIP_INDEX_URL) and run the installer again"
        )
    if not_found is not None:
        req = not_found.group("req")
        versions = not_found.groupdict().get("versions")
        why = "no version of it is available" if versions in (None, "none") else f"only {versions} exist"
        extra = ""
        wrong_python = _REQUIRES_PYTHON.search(output)
        if wrong_python is not None:
            extra = f"; some releases need a different Python ({_tail(wrong_python.group(1), 80)})"
        return f"pip could not install {req}: {why} for this platform and Python{extra}"
    if _HASH.search(output):
        return "pip refused a download whose hash did not match (a corrupted download or a proxy); run again"
    conflict = _CONFLICT.search(output)
    if conflict is not None or _RESOLUTION_IMPOSSIBLE.search(output):
        what = conflict.group("what") if conflict is not None else "the requested packages"
        return f"pip could not install {_tail(what, 100)}: their dependencies conflict"
    for pattern in _BUILD_FAILED:
        built = pattern.search(output)
        if built is not None:
            return f"pip could not build {built.group('name')} (a compiler or system library may be missing)"
    if _SUBPROCESS_FAILED in output:
        # metadata generation or a build-dependency step failed: blame the last package pip started on
        at = output.index(_SUBPROCESS_FAILED)
        started = [m.group("name") for m in _COLLECTING.finditer(output, 0, at)]
        if started:
            return f"pip could not prepare {started[-1]}: its build step failed"
    oserror = _OSERROR.search(output)
    if oserror is not None:
        return f"pip could not write the packages: {_tail(oserror.group('msg'), 120)}"
    if net is not None:
        return f"cannot reach the package index {index_url} ({net}); check the connection and run again"
    errors = [line.strip() for line in output.splitlines() if line.strip().startswith("ERROR:")]
    if errors:
        return f"pip failed: {_tail(errors[-1][len('ERROR:') :].strip(), 140)}"
    return "pip failed without an error message"
