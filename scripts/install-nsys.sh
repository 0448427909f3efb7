#!/usr/bin/env bash
# Install NVIDIA Nsight Systems (the `nsys` CLI) on Debian or Ubuntu.
#
# Debian ships it as `nsight-systems` in the non-free component (its libcuda1 dependency chain also
# needs nvidia-support from contrib), Ubuntu in multiverse; this script enables those components for
# the distribution's own archive when missing, then installs the package. It does nothing when nsys
# is already there. Needs root (or sudo).
set -euo pipefail

if command -v nsys >/dev/null 2>&1 || [ -x /usr/lib/nsight-systems/bin/nsys ]; then
    echo "install-nsys: nsys is already installed"
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-nsys: no apt-get here; install Nsight Systems from https://developer.nvidia.com/nsight-systems" >&2
    exit 1
fi
SUDO=""
if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
        echo "install-nsys: run as root (apt-get needs it)" >&2
        exit 1
    fi
fi

. /etc/os-release
case "${ID:-}" in
    ubuntu) components="multiverse" ;;
    *) components="contrib non-free" ;;
esac

enable_component() {
    local component="$1"
    # deb822 sources (Debian 12+, Ubuntu 24.04+): add the component to every "Components:" line
    local changed=0
    for file in /etc/apt/sources.list.d/*.sources; do
        [ -f "$file" ] || continue
        if grep -q '^Components:' "$file" && ! grep -q "^Components:.*\b${component}\b" "$file"; then
            $SUDO sed -i "s/^Components: \(.*\)$/Components: \1 ${component}/" "$file"
            changed=1
        fi
    done
    # one-line sources.list entries
    if [ -f /etc/apt/sources.list ] && grep -qE '^deb ' /etc/apt/sources.list \
        && ! grep -qE "^deb .*\b${component}\b" /etc/apt/sources.list; then
        $SUDO sed -i -E "s/^(deb .* main)(.*)$/\1 ${component}\2/" /etc/apt/sources.list
        changed=1
    fi
    echo "install-nsys: ${component} component $([ $changed = 1 ] && echo enabled || echo already enabled)"
}

for component in $components; do enable_component "$component"; done
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends nsight-systems >/dev/null
nsys_bin="$(command -v nsys || echo /usr/lib/nsight-systems/bin/nsys)"
echo "install-nsys: installed $("$nsys_bin" --version 2>/dev/null | head -1)"
