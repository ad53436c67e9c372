#!/bin/sh
# Installs wasmgrid-agent, the volunteer agent, from the wasmgrid broker at
# @BASE@.
#
# Read it before you run it:
#     curl -fsSL @BASE@/install.sh | less
# It does five things:
#   1. finds this machine's OS and CPU with `uname`;
#   2. picks the matching build from the table below, which the broker
#      wrote into this script, each build with its sha256;
#   3. downloads that one build with curl, into a temporary file;
#   4. checks the file's sha256 against the table (with sha256sum or
#      shasum) and stops, deleting the file, if they differ;
#   5. installs it as ~/.local/bin/wasmgrid-agent (or in
#      $WASMGRID_INSTALL_DIR), replacing an older one there.
# It needs no root and changes nothing else: no service, no PATH, no
# configuration. To undo it, delete that one file.
#
# What the sha256 check is worth: this script and the build come over
# plain HTTP. The check catches a download that was cut short or damaged;
# it does not stop someone who can change traffic between you and the
# broker, since they could change this script too. Once installed,
# `wasmgrid-agent update` fetches new builds over the broker's TLS
# connection and checks them the same way.
#
# The agent runs tasks for every issuer of this broker: there is nothing
# else to install, ever, whatever work it takes.

set -eu

# Everything happens in main, called on the last line: a script cut short
# on its way to you runs nothing at all.
main() {
    base='@BASE@'
    dir="${WASMGRID_INSTALL_DIR:-$HOME/.local/bin}"

    # 1. This machine, named as the builds are (Rust's names for OS and CPU).
    os=$(uname -s)
    arch=$(uname -m)
    case "$os" in
        Linux) os=linux ;;
        Darwin) os=macos ;;
        FreeBSD) os=freebsd ;;
        NetBSD) os=netbsd ;;
        OpenBSD) os=openbsd ;;
    esac
    case "$arch" in
        amd64) arch=x86_64 ;;
        arm64) arch=aarch64 ;;
        i386 | i486 | i586 | i686) arch=x86 ;;
        armv*) arch=arm ;;
        ppc64 | ppc64le) arch=powerpc64 ;;
    esac

    # 2. The newest build of each platform this broker hosts (the full list,
    #    with older versions: @BASE@/downloads).
    case "$os-$arch" in
@TABLE@
        *)
            echo "error: this broker has no wasmgrid-agent build for $os-$arch" >&2
            echo "it has builds for: @PLATFORMS@" >&2
            exit 1
            ;;
    esac

    # 3. Download, into the install directory, so that installing is a
    #    rename and a half-written agent is never left in its place.
    if ! command -v curl >/dev/null 2>&1; then
        echo "error: curl is needed to download the agent" >&2
        exit 1
    fi
    mkdir -p "$dir"
    tmp="$dir/.wasmgrid-agent.download.$$"
    trap 'rm -f "$tmp"' EXIT
    echo "downloading $base/downloads/$file"
    curl -fsSL -o "$tmp" "$base/downloads/$file"

    # 4. Check the sha256 against the table above.
    if command -v sha256sum >/dev/null 2>&1; then
        actual=$(sha256sum "$tmp" | cut -d ' ' -f 1)
    elif command -v shasum >/dev/null 2>&1; then
        actual=$(shasum -a 256 "$tmp" | cut -d ' ' -f 1)
    else
        echo "error: sha256sum or shasum is needed to check the download" >&2
        exit 1
    fi
    if [ "$actual" != "$sha256" ]; then
        echo "error: the download's sha256 is $actual, the broker lists $sha256: not installed" >&2
        exit 1
    fi

    # 5. Install.
    chmod 755 "$tmp"
    mv -f "$tmp" "$dir/wasmgrid-agent"
    trap - EXIT
    echo "installed $dir/wasmgrid-agent $version (sha256 $sha256)"
    case ":$PATH:" in
        *":$dir:"*) ;;
        *) echo "note: $dir is not on your PATH; run the agent by its full path, or add it" ;;
    esac
    echo
    echo "start it (it asks for work until you stop it with Ctrl-C):"
    echo "    $dir/wasmgrid-agent --broker @BROKER@ --memory 512MiB --slots 2"
    echo "add --ca-cert FILE if the broker's operator gave you a CA certificate."
    echo "update it later with:"
    echo "    $dir/wasmgrid-agent update --broker @BROKER@"
}

main "$@"
