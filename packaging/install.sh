#!/bin/sh
# Install chatstack-status on a host without dpkg (replaces the old
# scripts/install_status_monitor.sh /opt/ChatStack).
#
#   packaging/install.sh [--uninstall] [PREFIX]          (PREFIX: /usr/local)
#
# Installs, under $DESTDIR if set:
#   PREFIX/bin/chatstack-status              from $BINARY, else target/release/
#   /etc/chatstack-status/monitor.yml        never overwritten: a changed one
#                                            gets monitor.yml.new beside it
#   /etc/chatstack-status/conf.d/            empty: other packages' drop-ins
#   /etc/systemd/system/chatstack-status{,-check}.service, -check.timer
#                                            with ExecStart= under PREFIX
#   PREFIX/share/man/man1/chatstack-status.1
#   PREFIX/share/bash-completion/completions/chatstack-status
#   PREFIX/share/zsh/site-functions/_chatstack-status
#   PREFIX/share/doc/chatstack-status/examples/  (Prometheus files, nginx location)
#   PREFIX/share/chatstack-status/www/       the dashboard's files (as embedded)
#   PREFIX/share/chatstack-status/openapi.json  the HTTP API's OpenAPI document
#   PREFIX/share/chatstack-status/integrations/chatstack_status_flask.py
#                                            the Flask blueprint (it finds the
#                                            www/ beside it)
#   /var/lib/chatstack                       mode 0750
# and, on a real install (root, no DESTDIR): the system user chatstack-status,
# ownership of the state directory and config, and the polkit rule if
# /etc/polkit-1/rules.d exists. It enables nothing: it prints the next steps.
#
# --uninstall removes exactly those files (and disables the units); it keeps
# an edited monitor.yml, a non-empty state directory and the user, and says
# so. Running either twice is harmless.
set -eu
umask 022

PKG=chatstack-status
USER_NAME=chatstack-status
UNITS="$PKG.service $PKG-check.service $PKG-check.timer"

usage() {
    echo "usage: $0 [--uninstall] [PREFIX]   (default PREFIX: /usr/local; honours DESTDIR, BINARY)"
}

mode=install
case "${1:-}" in
    --uninstall) mode=uninstall; shift ;;
    -h|--help) usage; exit 0 ;;
    -*) usage >&2; exit 2 ;;
esac
[ $# -le 1 ] || { usage >&2; exit 2; }
PREFIX=${1:-/usr/local}
PREFIX=${PREFIX%/}
case "$PREFIX" in
    /*) ;;
    *) echo "install.sh: PREFIX must be an absolute path: $PREFIX" >&2; exit 2 ;;
esac
case "$PREFIX" in
    *[!A-Za-z0-9/._+-]*)
        echo "install.sh: PREFIX may contain only letters, digits and /._+- (it goes into ExecStart=): $PREFIX" >&2
        exit 2 ;;
esac
DESTDIR=${DESTDIR:-}
DESTDIR=${DESTDIR%/}

here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
BINARY=${BINARY:-$repo/target/release/$PKG}

bindir=$PREFIX/bin
mandir=$PREFIX/share/man/man1
bashcompdir=$PREFIX/share/bash-completion/completions
zshcompdir=$PREFIX/share/zsh/site-functions
exampledir=$PREFIX/share/doc/$PKG/examples
sharedir=$PREFIX/share/$PKG
confdir=/etc/$PKG
unitdir=/etc/systemd/system
statedir=/var/lib/chatstack
polkit_rule=/etc/polkit-1/rules.d/50-$PKG.rules
EXAMPLES="scrape.yml targets.yml alerts.yml alerts_test.yml rules.yml rules_test.yml dashboard.json alertmanager.yml"
NGINX_EXAMPLE=nginx-status-location.conf
BLUEPRINT=chatstack_status_flask.py
# www/ relative paths, one a line, as build.rs embeds them (no dotfiles).
www_files() {
    (cd "$repo/www" && find . -type f ! -path '*/.*' | sed 's|^\./||' | LC_ALL=C sort)
}
# Their directories, deepest first (js/a/b, js/a, js).
www_dirs() {
    www_files | while IFS= read -r f; do
        while case $f in */*) true ;; *) false ;; esac; do
            f=${f%/*}
            echo "$f"
        done
    done | LC_ALL=C sort -ru
}

# A real install touches the running system: users, ownership, systemd.
real=false
if [ -z "$DESTDIR" ] && [ "$(id -u)" = 0 ]; then
    real=true
fi

say() { echo "$*"; }

put() { # mode src dest(without DESTDIR)
    if [ -f "$DESTDIR$3" ] && cmp -s "$2" "$DESTDIR$3"; then
        chmod "$1" "$DESTDIR$3"
        say "unchanged  $DESTDIR$3"
    else
        install -D -m "$1" "$2" "$DESTDIR$3"
        say "installed  $DESTDIR$3"
    fi
}

del() { # dest(without DESTDIR)
    if [ -e "$DESTDIR$1" ] || [ -L "$DESTDIR$1" ]; then
        rm -f "$DESTDIR$1"
        say "removed    $DESTDIR$1"
    fi
}

rmdir_quiet() { # dir(without DESTDIR): remove if empty
    if [ -d "$DESTDIR$1" ] && rmdir "$DESTDIR$1" 2>/dev/null; then
        say "removed    $DESTDIR$1/"
    fi
}

# Remove the enablement symlinks `systemctl enable` made (Alias=, WantedBy=)
# if they point at our units; for a DESTDIR or a host without systemd running.
del_unit_links() {
    for link in "$unitdir/status_monitor.service" \
                "$unitdir/multi-user.target.wants/$PKG.service" \
                "$unitdir/timers.target.wants/$PKG-check.timer"; do
        if [ -L "$DESTDIR$link" ]; then
            case "$(readlink "$DESTDIR$link")" in
                */"$PKG.service"|*/"$PKG-check.timer"|"$PKG.service"|"$PKG-check.timer") del "$link" ;;
            esac
        fi
    done
}

systemd_running() {
    $real && [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1
}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/$PKG-install.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

if [ "$mode" = install ]; then
    if [ ! -f "$BINARY" ]; then
        echo "install.sh: $BINARY: no such file; run 'cargo build --release' or set BINARY=/path/to/$PKG" >&2
        exit 1
    fi
    put 0755 "$BINARY" "$bindir/$PKG"

    # Config: never overwrite one that exists.
    shipped=$repo/config/monitor.yml
    conf=$confdir/monitor.yml
    if [ ! -e "$DESTDIR$conf" ]; then
        install -D -m 0640 "$shipped" "$DESTDIR$conf"
        say "installed  $DESTDIR$conf"
    elif cmp -s "$shipped" "$DESTDIR$conf"; then
        say "unchanged  $DESTDIR$conf"
        rm -f "$DESTDIR$conf.new"
    else
        install -m 0640 "$shipped" "$DESTDIR$conf.new"
        say "kept       $DESTDIR$conf (yours, edited); the shipped one is $DESTDIR$conf.new: compare and merge"
    fi

    if [ ! -d "$DESTDIR$confdir/conf.d" ]; then
        install -d -m 0755 "$DESTDIR$confdir/conf.d"
        say "created    $DESTDIR$confdir/conf.d/ (drop-ins: services and notifiers of other packages)"
    fi

    for unit in $UNITS; do
        sed -e "s|/usr/bin/$PKG|$bindir/$PKG|g" "$here/systemd/$unit" >"$tmp/$unit"
        put 0644 "$tmp/$unit" "$unitdir/$unit"
    done
    put 0644 "$here/man/$PKG.1" "$mandir/$PKG.1"
    put 0644 "$here/completions/$PKG.bash" "$bashcompdir/$PKG"
    put 0644 "$here/completions/_$PKG" "$zshcompdir/_$PKG"
    for f in $EXAMPLES; do
        put 0644 "$here/prometheus/$f" "$exampledir/$f"
    done
    put 0644 "$repo/integrations/nginx/status-location.conf" "$exampledir/$NGINX_EXAMPLE"
    www_files | while IFS= read -r f; do
        put 0644 "$repo/www/$f" "$sharedir/www/$f"
    done
    put 0644 "$repo/integrations/flask/$BLUEPRINT" "$sharedir/integrations/$BLUEPRINT"
    put 0644 "$repo/src/server/openapi.json" "$sharedir/openapi.json"

    if [ ! -d "$DESTDIR$statedir" ]; then
        mkdir -p "$DESTDIR$statedir"
        say "created    $DESTDIR$statedir/"
    fi
    chmod 0750 "$DESTDIR$statedir"

    if $real; then
        if ! getent passwd "$USER_NAME" >/dev/null; then
            if command -v useradd >/dev/null 2>&1; then
                useradd --system --user-group --home-dir "$statedir" --no-create-home \
                    --shell /usr/sbin/nologin --comment "chatstack-status health monitor" "$USER_NAME"
            else
                adduser --system --group --home "$statedir" --no-create-home \
                    --gecos "chatstack-status health monitor" "$USER_NAME"
            fi
            say "created    system user $USER_NAME"
        fi
        chown "$USER_NAME:$USER_NAME" "$statedir"
        chown "root:$USER_NAME" "$conf"
        if [ -d "$(dirname "$polkit_rule")" ]; then
            if "$bindir/$PKG" polkit-rule -c "$conf" >"$tmp/rule" && [ -s "$tmp/rule" ]; then
                put 0644 "$tmp/rule" "$polkit_rule"
            else
                say "warning: could not generate $polkit_rule; healing is not authorised until you run:"
                say "  $bindir/$PKG polkit-rule > $polkit_rule"
            fi
        fi
    fi

    echo
    echo "Next steps:"
    [ -n "$DESTDIR" ] && echo "  (installed into DESTDIR=$DESTDIR: copy it to the target host first)"
    $real || echo "  as root: create the user: useradd --system --user-group --home-dir $statedir --no-create-home --shell /usr/sbin/nologin $USER_NAME"
    $real || echo "           chown $USER_NAME:$USER_NAME $statedir; chown root:$USER_NAME $conf"
    $real || echo "           $bindir/$PKG polkit-rule > $polkit_rule"
    echo "  edit $conf, then: $bindir/$PKG validate -c $conf"
    echo "  systemctl daemon-reload"
    echo "  systemctl enable --now $PKG.service"
    echo "     (or, instead of the daemon: systemctl enable --now $PKG-check.timer)"
    echo "  a Flask admin panel: $sharedir/integrations/$BLUEPRINT (docs/EMBEDDING.md)"
    exit 0
fi

# --- uninstall -------------------------------------------------------------
if systemd_running; then
    systemctl disable --now "$PKG-check.timer" "$PKG.service" >/dev/null 2>&1 || true
    systemctl stop "$PKG-check.service" >/dev/null 2>&1 || true
    say "disabled   $PKG.service, $PKG-check.timer"
fi
del_unit_links
for unit in $UNITS; do
    del "$unitdir/$unit"
done
if systemd_running; then
    systemctl daemon-reload || true
fi

del "$bindir/$PKG"
del "$mandir/$PKG.1"
del "$bashcompdir/$PKG"
del "$zshcompdir/_$PKG"
for f in $EXAMPLES $NGINX_EXAMPLE; do
    del "$exampledir/$f"
done
rmdir_quiet "$exampledir"
rmdir_quiet "$PREFIX/share/doc/$PKG"
www_files | while IFS= read -r f; do
    del "$sharedir/www/$f"
done
del "$sharedir/integrations/$BLUEPRINT"
del "$sharedir/openapi.json"
www_dirs | while IFS= read -r d; do
    rmdir_quiet "$sharedir/www/$d"
done
rmdir_quiet "$sharedir/www"
rmdir_quiet "$sharedir/integrations"
rmdir_quiet "$sharedir"

conf=$confdir/monitor.yml
del "$conf.new"
if [ -f "$DESTDIR$conf" ]; then
    if cmp -s "$repo/config/monitor.yml" "$DESTDIR$conf"; then
        del "$conf"
    else
        say "kept       $DESTDIR$conf (edited; delete it yourself if you no longer need it)"
    fi
fi
rmdir_quiet "$confdir/conf.d"
rmdir_quiet "$confdir"

if [ -f "$DESTDIR$polkit_rule" ] && head -n 1 "$DESTDIR$polkit_rule" | grep -q "^// $PKG:"; then
    del "$polkit_rule"
fi

if [ -d "$DESTDIR$statedir" ]; then
    if rmdir "$DESTDIR$statedir" 2>/dev/null; then
        say "removed    $DESTDIR$statedir/"
    else
        say "kept       $DESTDIR$statedir/ (status and state; rm -r it to forget them)"
    fi
fi
if $real && getent passwd "$USER_NAME" >/dev/null; then
    say "kept       system user $USER_NAME (userdel $USER_NAME to remove it)"
fi
exit 0
