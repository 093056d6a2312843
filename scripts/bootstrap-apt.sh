#!/usr/bin/env bash
# Install the Debian packages listed in one or more bindep-style files, but only the missing ones.
#
#   scripts/bootstrap-apt.sh [--check] FILE...
#
# File format (a subset of bindep): one package name per line; '#' starts a comment; an optional
# trailing selector in brackets is honoured for platforms only, e.g. `qemu-utils [platform:dpkg]`
# is installed here and `qemu-img [platform:rpm]` / `foo [!platform:dpkg]` are skipped. Version
# constraints (`pkg >=1.2`) and profile names are ignored. Use real package names, not virtual ones.
#
# When everything is installed this is a fast no-op (a single dpkg-query call, no network).
# Otherwise it runs `apt-get update` once and installs the missing packages non-interactively,
# as root, via `sudo -n` when not root, or fails listing what is missing. --check only reports.
set -euo pipefail

check_only=false
if [[ ${1:-} == --check ]]; then
    check_only=true
    shift
fi
if [[ $# -eq 0 ]]; then
    echo "usage: $0 [--check] FILE..." >&2
    exit 2
fi

wanted=()
for list in "$@"; do
    [[ -r $list ]] || { echo "bootstrap-apt: cannot read $list" >&2; exit 2; }
    while IFS= read -r line || [[ -n $line ]]; do
        line=${line%%#*}
        selector=""
        if [[ $line == *"["*"]"* ]]; then
            selector=${line#*[}
            selector=${selector%%]*}
            line=${line%%[*}
        fi
        read -r name _ <<<"$line" || true
        [[ -n ${name:-} ]] || continue
        if [[ -n $selector ]]; then
            include=true
            platforms=()
            for word in $selector; do
                case $word in
                    '!platform:dpkg' | '!platform:debian') include=false ;;
                    platform:*) platforms+=("$word") ;;
                esac
            done
            if [[ ${#platforms[@]} -gt 0 ]] && ! [[ " ${platforms[*]} " =~ \ platform:(dpkg|debian)\  ]]; then
                include=false
            fi
            [[ $include == true ]] || continue
        fi
        wanted+=("$name")
    done <"$list"
done
[[ ${#wanted[@]} -gt 0 ]] || exit 0

if ! command -v dpkg-query >/dev/null 2>&1; then
    echo "bootstrap-apt: dpkg-query not found; this project expects Debian (bookworm)." >&2
    echo "bootstrap-apt: install the equivalents of: ${wanted[*]}" >&2
    exit 1
fi

# One dpkg-query call for all packages; unknown packages only produce stderr noise.
declare -A installed=()
while read -r pkg status; do
    [[ ${status:1:1} == i ]] && installed[${pkg%%:*}]=1
done < <(dpkg-query -W -f='${binary:Package} ${db:Status-Abbrev}\n' "${wanted[@]}" 2>/dev/null || true)

missing=()
for name in "${wanted[@]}"; do
    [[ -n ${installed[${name%%:*}]:-} ]] || missing+=("$name")
done
[[ ${#missing[@]} -gt 0 ]] || exit 0

# Deduplicate while keeping the order.
mapfile -t missing < <(printf '%s\n' "${missing[@]}" | awk '!seen[$0]++')
echo "bootstrap-apt: missing Debian packages: ${missing[*]}"
if [[ $check_only == true ]]; then
    exit 1
fi

if [[ $(id -u) -eq 0 ]]; then
    as_root=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    as_root=(sudo -n)
else
    echo "bootstrap-apt: not root and passwordless sudo is unavailable. Run as root:" >&2
    echo "  apt-get update && apt-get install -y --no-install-recommends ${missing[*]}" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
apt_opts=(-q -y -o DPkg::Lock::Timeout=300 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -qq "${apt_opts[@]}" update
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get "${apt_opts[@]}" install --no-install-recommends "${missing[@]}"
echo "bootstrap-apt: installed ${missing[*]}"
