#!/usr/bin/env bash
# Install the Open WebUI releases the real-Open-WebUI test runs against, one virtualenv each.
#
#   bash tests/real_openwebui/install.sh            # 0.6.43 and 0.12.4
#   bash tests/real_openwebui/install.sh 0.12.4     # one of them
#
# Each goes to $OWUI_METER_OPENWEBUI_CACHE/openwebui-<version> (default ~/.cache/owui-meter).
# A virtualenv that already imports open_webui at that version is left as it is, so running this
# again costs nothing. Otherwise it is made afresh: torch first (pinned, so pip's resolver does not
# go hunting through torch releases), then open-webui. About 10 minutes and 3 GB per version.
set -euo pipefail

CACHE="${OWUI_METER_OPENWEBUI_CACHE:-$HOME/.cache/owui-meter}"
PYTHON="${PYTHON:-python3}"
TORCH="torch==2.13.0"
VERSIONS=("$@")
[ ${#VERSIONS[@]} -gt 0 ] || VERSIONS=(0.6.43 0.12.4)

installed_version() {  # the open-webui version a venv holds, or nothing
    "$1/bin/python" -c 'import open_webui, importlib.metadata as m; print(m.version("open-webui"))' 2>/dev/null || true
}

mkdir -p "$CACHE"
for version in "${VERSIONS[@]}"; do
    venv="$CACHE/openwebui-$version"
    if [ "$(installed_version "$venv")" = "$version" ]; then
        echo "open-webui $version: already installed in $venv"
        continue
    fi
    echo "open-webui $version: installing into $venv (about 10 minutes, 3 GB)"
    rm -rf "$venv"
    "$PYTHON" -m venv "$venv"
    "$venv/bin/pip" install -q "$TORCH"
    "$venv/bin/pip" install -q "open-webui==$version"
    got="$(installed_version "$venv")"
    if [ "$got" != "$version" ]; then
        echo "open-webui $version: the install finished but the venv holds '${got:-nothing}'" >&2
        exit 1
    fi
    echo "open-webui $version: installed in $venv"
done
