# Shared set-up for ./run and ./run-tests: system packages, a virtualenv in .venv, ravemap in it.
# Sourced, not run. Idempotent: a second call only checks and returns.

RAVEMAP_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$RAVEMAP_ROOT/.venv"

_sudo() {
    if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
        echo "ravemap setup: need root for: $*" >&2; return 1; fi
}

# setup_system PKG...: install missing Debian/Ubuntu packages (skipped where there is no apt-get).
setup_system() {
    local missing=()
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if ! command -v apt-get >/dev/null; then
        echo "ravemap setup: please install ${missing[*]} with your package manager" >&2
        return 0
    fi
    echo "ravemap setup: installing ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    _sudo apt-get update -qq
    _sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

_python() {
    for py in python3.11 python3.12 python3.13 python3; do
        if command -v "$py" >/dev/null && "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
            echo "$py"; return 0
        fi
    done
    echo "ravemap setup: Python 3.11 or newer is needed" >&2
    return 1
}

# setup_venv [EXTRAS]: create .venv and install ravemap (editable) with the given extras.
setup_venv() {
    local extras="${1:-}" py stamp
    py="$(_python)"
    if [ ! -x "$VENV/bin/python" ]; then
        if ! "$py" -m venv "$VENV" 2>/dev/null; then
            rm -rf "$VENV"
            local ver; ver="$("$py" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
            setup_system "python${ver}-venv"
            "$py" -m venv "$VENV"
        fi
    fi
    stamp="$VENV/.ravemap-$(cat "$RAVEMAP_ROOT/pyproject.toml" | sha1sum | cut -c1-12)-${extras:-base}"
    [ -f "$stamp" ] && return 0
    echo "ravemap setup: installing Python packages into .venv" >&2
    "$VENV/bin/python" -m pip install -q --upgrade pip
    # torch first, pinned: 2.13.0 is the CPU build; pyproject allows >=2.13.0,<2.14 so nothing newer is pulled.
    "$VENV/bin/python" -m pip install -q "${RAVEMAP_TORCH:-torch==2.13.0}"
    "$VENV/bin/python" -m pip install -q -e "$RAVEMAP_ROOT${extras:+[$extras]}"
    touch "$stamp"
}
