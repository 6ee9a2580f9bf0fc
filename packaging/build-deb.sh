#!/bin/bash
# Build the chatstack-status .deb from a release binary:
#
#   packaging/build-deb.sh BINARY OUTDIR
#
# writes OUTDIR/chatstack-status_<version>_<arch>.deb and prints its path as
# the last line of output.
#
# Why plain dpkg-deb and not cargo-deb: cargo-deb is one more tool to compile
# in CI (and to keep in step with Cargo), while dpkg-deb, dpkg-shlibdeps and
# lintian are Debian packages that install in seconds; no fakeroot either:
# `dpkg-deb --root-owner-group` makes every file root:root. The package is
# simple enough that this script is the whole recipe, and the
# maintainer scripts in packaging/debian/ are the ones dh_installsystemd would
# generate, written out so that they can be read and tested.
#
# <version> is the `version =` of [package] in the repo's Cargo.toml, with a
# Debian revision (-1, or $DEB_REVISION) so that the package is non-native and
# its changelog is changelog.Debian.gz; a semver pre-release 1.0.0-rc.1
# becomes 1.0.0~rc.1 so that it sorts before 1.0.0. <arch> is
# `dpkg --print-architecture`.
#
# The build is reproducible: timestamps come from $SOURCE_DATE_EPOCH, else
# the last git commit. Needs: dpkg-dev (dpkg-shlibdeps), binutils (strip).
set -euo pipefail
umask 022

die() { echo "build-deb.sh: error: $*" >&2; exit 1; }

[ $# -eq 2 ] || { echo "usage: $0 BINARY OUTDIR" >&2; exit 2; }
BINARY=$1
OUTDIR=$2

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")
PKG=chatstack-status

[ -f "$BINARY" ] || die "$BINARY: no such file (build it first: cargo build --release)"
[ "$(head -c 4 "$BINARY" | od -An -tx1 | tr -d ' ')" = 7f454c46 ] ||
    die "$BINARY: not an ELF executable"
[ -f "$repo/Cargo.toml" ] || die "$repo/Cargo.toml: no such file"
[ -f "$repo/config/monitor.yml" ] || die "$repo/config/monitor.yml: no such file"
[ -f "$repo/www/admin_status.html" ] || die "$repo/www/admin_status.html: no such file"
[ -f "$repo/integrations/flask/chatstack_status_flask.py" ] ||
    die "$repo/integrations/flask/chatstack_status_flask.py: no such file"

# --- version and architecture -------------------------------------------
upstream=$(sed -n '/^\[package\]/,/^\[/s/^version[[:space:]]*=[[:space:]]*"\([^"]*\)".*/\1/p' "$repo/Cargo.toml" | head -n 1)
[ -n "$upstream" ] ||
    upstream=$(sed -n 's/^version[[:space:]]*=[[:space:]]*"\([^"]*\)".*/\1/p' "$repo/Cargo.toml" | head -n 1)
[ -n "$upstream" ] || die "$repo/Cargo.toml: no 'version = \"...\"' line"
upstream=${upstream//-/\~}
upstream=${upstream//+/\~}
VERSION="$upstream-${DEB_REVISION:-1}"
ARCH=$(dpkg --print-architecture)

if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
    SOURCE_DATE_EPOCH=$(git -C "$repo" log -1 --format=%ct 2>/dev/null || true)
    [ -n "$SOURCE_DATE_EPOCH" ] || SOURCE_DATE_EPOCH=$(date +%s)
fi
export SOURCE_DATE_EPOCH

mkdir -p "$OUTDIR"
OUTDIR=$(cd "$OUTDIR" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/$PKG-deb.XXXXXX")
trap 'rm -rf "$work"' EXIT
root=$work/root

# --- files ----------------------------------------------------------------
inst() { # mode src dest
    install -D -m "$1" "$2" "$root$3"
}
gz() { # src dest: gzip -9n, as dh_compress does
    mkdir -p "$(dirname "$root$2")"
    gzip -9nc "$1" >"$root$2"
    chmod 0644 "$root$2"
}

inst 0755 "$BINARY" /usr/bin/$PKG
# As dh_strip does for executables.
strip --remove-section=.comment --remove-section=.note --strip-unneeded "$root/usr/bin/$PKG"

inst 0644 "$repo/config/monitor.yml" /etc/$PKG/monitor.yml
# Empty: where other packages (ChatStack's own) drop their services.
install -d -m 0755 "$root/etc/$PKG/conf.d"

for unit in $PKG.service $PKG-check.service $PKG-check.timer; do
    inst 0644 "$here/systemd/$unit" "/lib/systemd/system/$unit"
done

gz "$here/man/$PKG.1" /usr/share/man/man1/$PKG.1.gz
inst 0644 "$here/completions/$PKG.bash" /usr/share/bash-completion/completions/$PKG
inst 0644 "$here/completions/_$PKG" /usr/share/zsh/vendor-completions/_$PKG

# The dashboard's files as the binary embeds them (www/ minus dotfiles, as
# build.rs does), in the layout of `www_dir`: for a `www_dir`, an nginx `alias`
# or the Flask blueprint (which serves the widget from here); and the blueprint.
share=/usr/share/$PKG
while IFS= read -r f; do
    inst 0644 "$repo/www/$f" "$share/www/$f"
done < <(cd "$repo/www" && find . -type f ! -path '*/.*' -printf '%P\n' | LC_ALL=C sort)
inst 0644 "$repo/integrations/flask/chatstack_status_flask.py" "$share/integrations/chatstack_status_flask.py"
inst 0644 "$repo/src/server/openapi.json" "$share/openapi.json"

doc=/usr/share/doc/$PKG
inst 0644 "$here/debian/copyright" $doc/copyright
inst 0644 "$here/debian/lintian-overrides" /usr/share/lintian/overrides/$PKG
for f in scrape.yml targets.yml alerts.yml alerts_test.yml rules.yml rules_test.yml dashboard.json alertmanager.yml; do
    inst 0644 "$here/prometheus/$f" $doc/examples/$f
done
inst 0644 "$repo/integrations/nginx/status-location.conf" $doc/examples/nginx-status-location.conf

maintainer=$(sed -n 's/^Maintainer: //p' "$here/debian/control")
{
    printf '%s (%s) unstable; urgency=medium\n\n' "$PKG" "$VERSION"
    printf '  * Release %s; see the project history for the changes.\n\n' "$upstream"
    printf ' -- %s  %s\n' "$maintainer" "$(LC_ALL=C date -u -R -d "@$SOURCE_DATE_EPOCH")"
} >"$work/changelog.Debian"
gz "$work/changelog.Debian" $doc/changelog.Debian.gz

# --- control --------------------------------------------------------------
depends=""
if command -v dpkg-shlibdeps >/dev/null 2>&1; then
    mkdir -p "$work/debian"
    printf 'Source: %s\n\nPackage: %s\nArchitecture: any\n' "$PKG" "$PKG" >"$work/debian/control"
    depends=$(cd "$work" && dpkg-shlibdeps -O -e "root/usr/bin/$PKG" 2>"$work/shlibdeps.err" |
        sed -n 's/^shlibs:Depends=//p') || { cat "$work/shlibdeps.err" >&2; die "dpkg-shlibdeps failed"; }
fi
if [ -z "$depends" ]; then
    # Without dpkg-dev: libc6 at the newest GLIBC_ symbol version the binary
    # uses (2.34 for the usual Rust std), libgcc-s1 if it links libgcc_s.
    echo "build-deb.sh: warning: dpkg-shlibdeps not available, computing Depends from objdump" >&2
    glibc=$(objdump -T "$root/usr/bin/$PKG" | sed -n 's/.*GLIBC_\([0-9][0-9.]*\).*/\1/p' | sort -V | tail -n 1)
    depends="libc6 (>= ${glibc:-2.34})"
    if objdump -p "$root/usr/bin/$PKG" | grep -q 'NEEDED.*libgcc_s\.so\.1'; then
        depends="$depends, libgcc-s1 (>= 4.2)"
    fi
fi

mkdir -p "$root/DEBIAN"
installed_size=$(du -s -k --apparent-size "$root" | cut -f1)
sed -e "s/@VERSION@/$VERSION/" -e "s/@ARCH@/$ARCH/" \
    -e "s/@INSTALLED_SIZE@/$installed_size/" -e "s/@DEPENDS@/$depends/" \
    "$here/debian/control" >"$root/DEBIAN/control"
printf '/etc/%s/monitor.yml\n' "$PKG" >"$root/DEBIAN/conffiles"
for script in postinst prerm postrm; do
    install -m 0755 "$here/debian/$script" "$root/DEBIAN/$script"
done
(cd "$root" && find . -path ./DEBIAN -prune -o -path ./etc -prune -o -type f -printf '%P\0' |
    LC_ALL=C sort -z | xargs -0 md5sum) >"$root/DEBIAN/md5sums"
chmod 0644 "$root/DEBIAN/control" "$root/DEBIAN/conffiles" "$root/DEBIAN/md5sums"

# --- build ----------------------------------------------------------------
find "$root" -depth -exec touch --no-dereference -d "@$SOURCE_DATE_EPOCH" {} +
deb="$OUTDIR/${PKG}_${VERSION}_${ARCH}.deb"
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
echo "built $(basename "$deb"): $(du -h --apparent-size "$deb" | cut -f1), Depends: $depends"
echo "$deb"
