#!/bin/bash
# Packaging test behind `make test-deb`:
#
#   bash tests/packaging/test-deb.sh target/release/chatstack-status
#
# Builds the .deb from BINARY, checks its contents, lintian, the systemd units,
# installs it, checks what the maintainer scripts did, reinstalls over an
# edited conffile, removes and purges it, then tests packaging/install.sh in a
# DESTDIR, shellcheck, the completions, the Prometheus files and the polkit
# rule; the www files and the Flask blueprint in /usr/share/chatstack-status,
# and a `www_dir` pointing there. Needs root and these Debian 12 packages:
# dpkg-dev lintian systemd man-db shellcheck prometheus prometheus-alertmanager
# nodejs binutils curl python3 (zsh optional).
#
# The machine is left as it was found: the package is purged at the end even
# on failure or interrupt; the test refuses to start if chatstack-status is
# already installed or its user exists, and moves aside (and puts back at the
# end) an /etc/chatstack-status, /var/lib/chatstack or /usr/bin/chatstack-status
# left by hand-run tries. The last line is "N passed, N failed[, N skipped]"; the
# exit status is non-zero if anything failed.
set -uo pipefail
export LC_ALL=C.UTF-8
export DEBIAN_FRONTEND=noninteractive

PKG=chatstack-status
USER_NAME=chatstack-status
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)

passed=0 failed=0 skipped=0
tmp=$(mktemp -d "${TMPDIR:-/tmp}/$PKG-test-deb.XXXXXX")
installed_by_us=false
created_polkit_dir=""
cleaned=false

ok() { passed=$((passed + 1)); echo "ok    $1"; }
not_ok() { # description [details...]
    failed=$((failed + 1))
    echo "FAIL  $1"
    shift
    if [ $# -gt 0 ]; then printf '%s\n' "$@" | head -n 60 | sed 's/^/      /'; fi
}
skip() { skipped=$((skipped + 1)); echo "skip  $1"; }

# check DESCRIPTION COMMAND...: passes when COMMAND exits 0; shows its output otherwise.
check() {
    local desc=$1 out
    shift
    if out=$("$@" 2>&1); then ok "$desc"; else not_ok "$desc" "$out"; fi
}
# quiet DESCRIPTION COMMAND...: passes when COMMAND exits 0 and prints nothing.
quiet() {
    local desc=$1 out
    shift
    out=$("$@" 2>&1)
    local rc=$?
    if [ $rc -eq 0 ] && [ -z "$out" ]; then ok "$desc"; else not_ok "$desc" "exit $rc" "$out"; fi
}
# has DESCRIPTION TEXT FIXED-STRING: TEXT contains FIXED-STRING
has() {
    if grep -qF -- "$3" <<<"$2"; then ok "$1"; else not_ok "$1" "no '$3' in:" "$2"; fi
}
# is DESCRIPTION ACTUAL EXPECTED
is() {
    if [ "$2" = "$3" ]; then ok "$1"; else not_ok "$1" "expected: $3" "got:      $2"; fi
}

# PIDs of the `chatstack-status serve` processes this test started.
serve_pids=()
stop_servers() {
    local pid
    for pid in "${serve_pids[@]+"${serve_pids[@]}"}"; do
        kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    done
    serve_pids=()
}

cleanup() {
    $cleaned && return
    cleaned=true
    stop_servers
    if $installed_by_us; then
        if dpkg-query -W -f='${Status}' "$PKG" 2>/dev/null | grep -q 'installed\|config-files'; then
            if ! dpkg --purge "$PKG" >"$tmp/cleanup-purge.log" 2>&1; then
                echo "warning: cleanup: dpkg --purge $PKG failed:" >&2
                sed 's/^/    /' "$tmp/cleanup-purge.log" >&2
            fi
        fi
        # Whatever a failed purge left behind is ours (what was there before is backed up).
        rm -rf "/etc/${PKG:?}" /var/lib/chatstack /etc/polkit-1/rules.d/50-$PKG.rules \
            /etc/systemd/system/status_monitor.service \
            /etc/systemd/system/multi-user.target.wants/$PKG.service \
            /etc/systemd/system/timers.target.wants/$PKG-check.timer
        getent passwd "$USER_NAME" >/dev/null && userdel "$USER_NAME" >/dev/null 2>&1
        getent group "$USER_NAME" >/dev/null && groupdel "$USER_NAME" >/dev/null 2>&1
    fi
    if [ -n "$created_polkit_dir" ]; then
        rm -rf "$created_polkit_dir"
    fi
    restore_backups
    rm -rf "$tmp"
}

# Files of a hand-run chatstack-status (not of the package) that the test
# would overwrite or purge: moved aside first, put back at the end.
backed_up=()
back_up() { # path
    local b
    b="$tmp/backup/$(printf '%s' "$1" | tr / _)"
    mkdir -p "$tmp/backup"
    if mv "$1" "$b"; then
        backed_up+=("$1")
        echo "# moved $1 aside for the test (put back at the end)"
    fi
}
restore_backups() {
    local p b
    for p in "${backed_up[@]+"${backed_up[@]}"}"; do
        b="$tmp/backup/$(printf '%s' "$p" | tr / _)"
        rm -rf "$p"
        mkdir -p "$(dirname "$p")"
        mv "$b" "$p" || echo "warning: could not put $p back from $b" >&2
    done
    backed_up=()
}
trap cleanup EXIT
trap 'echo "interrupted" >&2; cleanup; exit 130' INT TERM HUP

finish() {
    cleanup
    trap - EXIT
    if [ $skipped -gt 0 ]; then
        echo "$passed passed, $failed failed, $skipped skipped"
    else
        echo "$passed passed, $failed failed"
    fi
    [ $failed -eq 0 ]
    exit
}

# --- preconditions -------------------------------------------------------
if [ $# -ne 1 ]; then
    echo "usage: $0 BINARY" >&2
    exit 2
fi
BINARY=$1
case "$BINARY" in /*) ;; *) BINARY=$PWD/$BINARY ;; esac

if [ ! -x "$BINARY" ]; then
    not_ok "binary $BINARY exists (cargo build --release first)"
    finish
fi
if [ "$(id -u)" != 0 ]; then
    not_ok "running as root (dpkg -i needs it)"
    finish
fi
missing=""
for tool in dpkg-deb dpkg-shlibdeps lintian systemd-analyze man shellcheck promtool amtool node strip readelf curl python3 setpriv; do
    command -v "$tool" >/dev/null 2>&1 || missing="$missing $tool"
done
if [ -n "$missing" ]; then
    not_ok "tools installed" "missing:$missing" \
        "apt-get install dpkg-dev lintian systemd man-db shellcheck prometheus prometheus-alertmanager nodejs binutils curl python3"
    finish
fi
leftovers=""
dpkg-query -W -f='${Status}' "$PKG" 2>/dev/null | grep -q 'installed\|config-files' && leftovers="$leftovers package"
getent passwd "$USER_NAME" >/dev/null && leftovers="$leftovers user"
getent group "$USER_NAME" >/dev/null && leftovers="$leftovers group"
if [ -n "$leftovers" ]; then
    not_ok "machine is clean of $PKG before the test (dpkg --purge $PKG / userdel $USER_NAME first)" "found:$leftovers"
    finish
fi
for p in /etc/$PKG /var/lib/chatstack /usr/bin/$PKG /etc/polkit-1/rules.d/50-$PKG.rules; do
    if [ -e "$p" ] || [ -L "$p" ]; then back_up "$p"; fi
done

upstream=$(sed -n '/^\[package\]/,/^\[/s/^version[[:space:]]*=[[:space:]]*"\([^"]*\)".*/\1/p' "$repo/Cargo.toml" | head -n 1)
config=$repo/config/monitor.yml

# Service-level `unit:` of config/monitor.yml: the heal targets. A `unit:` of a
# `type: systemd` check is observe-only and must NOT be in the polkit rule.
heal_units() {
    awk '
        function val(s) { sub(/^unit:[ \t]*/, "", s); sub(/[ \t]+#.*$/, "", s); sub(/[ \t]+$/, "", s)
                          gsub(/^["\047]|["\047]$/, "", s); return s }
        /^services:/ { ins = 1; item = -1; next }
        ins && /^[^ \t#]/ { ins = 0 }
        ins {
            match($0, /^ */); ind = RLENGTH; line = substr($0, ind + 1)
            if (line ~ /^- /) {
                if (item < 0) item = ind
                if (ind == item) { line = substr(line, 3); sub(/^ */, "", line); ind = item + 2 }
            }
            if (item >= 0 && ind == item + 2 && line ~ /^unit:/) print val(line)
        }' "$1" | sort -u
}
# Every `unit:` in the config (heal targets and observed units).
all_units() {
    sed -n 's/^[[:space:]]*-\{0,1\}[[:space:]]*unit:[[:space:]]*//p' "$1" |
        sed -e 's/[[:space:]]#.*$//' -e 's/[[:space:]]*$//' -e 's/^["'\'']//' -e 's/["'\'']$//' | sort -u
}

# Which of the given units the polkit rule lets USER restart; "-" for none.
# Runs the rule in node with a minimal polkit object, so the check does not
# depend on how the rule is formatted.
cat >"$tmp/polkit-eval.js" <<'EOF'
"use strict";
const fs = require("fs"), vm = require("vm");
const [ruleFile, user, actionId, verb, ...units] = process.argv.slice(2);
const rules = [];
const polkit = {
    Result: { NO: "no", YES: "yes", AUTH_SELF: "auth_self", AUTH_SELF_KEEP: "auth_self_keep",
              AUTH_ADMIN: "auth_admin", AUTH_ADMIN_KEEP: "auth_admin_keep", NOT_HANDLED: null },
    addRule: (f) => rules.push(f), addAdminRule: () => {}, log: () => {},
    spawn: () => { throw new Error("polkit.spawn called"); },
};
vm.runInNewContext(fs.readFileSync(ruleFile, "utf8"), { polkit });
const allowed = units.filter((unit) => {
    const action = { id: actionId, lookup: (k) => ({ unit, verb })[k] };
    const subject = { user, pid: 1234, groups: [user], seat: "", session: "", local: false,
                      active: false, isInGroup: () => false, isInNetGroup: () => false };
    for (const rule of rules) {
        const r = rule(action, subject);
        if (r !== undefined && r !== null) return r === "yes";
    }
    return false;
});
console.log(allowed.length ? allowed.sort().join("\n") : "-");
EOF

# check_polkit_rule DESCRIPTION FILE
check_polkit_rule() {
    local desc=$1 rule=$2 js=$tmp/rule-check.js want got candidates
    cp "$rule" "$js"
    check "$desc: passes node --check" node --check "$js"
    want=$(heal_units "$config")
    candidates=$( { all_units "$config"; echo ssh.service; echo "$PKG.service"; echo dbus.service; } | sort -u)
    # shellcheck disable=SC2086 # one unit per word
    got=$(node "$tmp/polkit-eval.js" "$js" "$USER_NAME" org.freedesktop.systemd1.manage-units restart $candidates 2>&1)
    is "$desc: allows restart of exactly the configured heal units" "$got" "${want:--}"
    # shellcheck disable=SC2086
    got=$(node "$tmp/polkit-eval.js" "$js" "$USER_NAME" org.freedesktop.systemd1.manage-units stop $candidates 2>&1)
    is "$desc: allows no 'stop'" "$got" "-"
    # shellcheck disable=SC2086
    got=$(node "$tmp/polkit-eval.js" "$js" nobody org.freedesktop.systemd1.manage-units restart $candidates 2>&1)
    is "$desc: allows nothing to another user" "$got" "-"
    # shellcheck disable=SC2086
    got=$(node "$tmp/polkit-eval.js" "$js" "$USER_NAME" org.freedesktop.systemd1.manage-unit-files restart $candidates 2>&1)
    is "$desc: allows no other action" "$got" "-"
    local missing_names="" u
    for u in $want; do grep -qF "\"$u\"" "$rule" || missing_names="$missing_names $u"; done
    is "$desc: names every configured unit literally" "${missing_names:-none missing}" "none missing"
}

echo "# $PKG packaging test: binary $BINARY, version $upstream"
check "Cargo.toml has a [package] version ($upstream)" test -n "$upstream"
check "config/monitor.yml exists" test -f "$config"
is "config/monitor.yml has heal units" "$( [ -n "$(heal_units "$config")" ] && echo yes)" yes

# --- build ----------------------------------------------------------------
echo "# build"
out=$(bash "$repo/packaging/build-deb.sh" "$BINARY" "$tmp/out" 2>&1)
rc=$?
deb=$(printf '%s\n' "$out" | tail -n 1)
if [ $rc -eq 0 ] && [ -f "$deb" ]; then
    ok "build-deb.sh builds $(basename "$deb") ($(du -h --apparent-size "$deb" | cut -f1))"
else
    not_ok "build-deb.sh builds the .deb" "$out"
    finish
fi
arch=$(dpkg --print-architecture)
debversion=$(dpkg-deb -f "$deb" Version)
is "file name is ${PKG}_<version>_<arch>.deb" "$(basename "$deb")" "${PKG}_${debversion}_${arch}.deb"
is "Debian version is the Cargo version plus a revision" "${debversion%-*}" "${upstream//-/\~}"
is "Package field" "$(dpkg-deb -f "$deb" Package)" "$PKG"
is "Architecture field" "$(dpkg-deb -f "$deb" Architecture)" "$arch"
depends=$(dpkg-deb -f "$deb" Depends)
case "$depends" in
    *"libc6 (>= "*adduser*) ok "Depends has libc6 (>= ...) and adduser: $depends" ;;
    *) not_ok "Depends has libc6 (>= ...) and adduser" "$depends" ;;
esac
case "$(dpkg-deb -f "$deb" Recommends)" in
    *polkitd*) ok "Recommends polkitd" ;;
    *) not_ok "Recommends polkitd" "$(dpkg-deb -f "$deb" Recommends)" ;;
esac
is "Suggests" "$(dpkg-deb -f "$deb" Suggests)" "monitoring-plugins-basic"
dpkg-deb -e "$deb" "$tmp/control"
is "conffiles" "$(cat "$tmp/control/conffiles" 2>&1)" "/etc/$PKG/monitor.yml"
for s in postinst prerm postrm; do
    is "DEBIAN/$s is 0755" "$(stat -c %a "$tmp/control/$s" 2>&1)" 755
done

echo "# contents"
# Expected files: mode path (owner root/root for all).
expected=$(
    cat <<EOF
-rwxr-xr-x ./usr/bin/$PKG
-rw-r--r-- ./etc/$PKG/monitor.yml
-rw-r--r-- ./lib/systemd/system/$PKG.service
-rw-r--r-- ./lib/systemd/system/$PKG-check.service
-rw-r--r-- ./lib/systemd/system/$PKG-check.timer
-rw-r--r-- ./usr/share/man/man1/$PKG.1.gz
-rw-r--r-- ./usr/share/doc/$PKG/copyright
-rw-r--r-- ./usr/share/doc/$PKG/changelog.Debian.gz
-rw-r--r-- ./usr/share/doc/$PKG/examples/scrape.yml
-rw-r--r-- ./usr/share/doc/$PKG/examples/alerts.yml
-rw-r--r-- ./usr/share/doc/$PKG/examples/alerts_test.yml
-rw-r--r-- ./usr/share/doc/$PKG/examples/rules.yml
-rw-r--r-- ./usr/share/doc/$PKG/examples/rules_test.yml
-rw-r--r-- ./usr/share/doc/$PKG/examples/dashboard.json
-rw-r--r-- ./usr/share/doc/$PKG/examples/targets.yml
-rw-r--r-- ./usr/share/doc/$PKG/examples/alertmanager.yml
-rw-r--r-- ./usr/share/doc/$PKG/examples/nginx-status-location.conf
-rw-r--r-- ./usr/share/bash-completion/completions/$PKG
-rw-r--r-- ./usr/share/zsh/vendor-completions/_$PKG
-rw-r--r-- ./usr/share/lintian/overrides/$PKG
-rw-r--r-- ./usr/share/$PKG/integrations/chatstack_status_flask.py
-rw-r--r-- ./usr/share/$PKG/openapi.json
EOF
    # The dashboard's files: all of www/, as build.rs embeds it (no dotfiles).
    (cd "$repo/www" && find . -type f ! -path '*/.*' -printf '%P\n' | LC_ALL=C sort) |
        sed "s|^|-rw-r--r-- ./usr/share/$PKG/www/|"
)
has "expected files include the dashboard page" "$expected" "./usr/share/$PKG/www/admin_status.html"
has "expected files include the widget" "$expected" "./usr/share/$PKG/www/js/status.js"
listing=$(dpkg-deb -c "$deb")
actual_files=$(printf '%s\n' "$listing" | awk '$1 !~ /^d/ { print $1, $2, $6 }')
while read -r mode path; do
    line=$(printf '%s\n' "$actual_files" | awk -v p="$path" '$3 == p')
    if [ -z "$line" ]; then
        not_ok "package contains $path"
    else
        is "$path is $mode root/root" "$(echo "$line" | awk '{ print $1, $2 }')" "$mode root/root"
    fi
done <<<"$expected"
extra=$(printf '%s\n' "$actual_files" | awk '{ print $3 }' | grep -vxF -f <(awk '{ print $2 }' <<<"$expected"))
is "package contains no other files" "${extra:-none}" "none"
baddirs=$(printf '%s\n' "$listing" | awk '$1 ~ /^d/ && ($1 != "drwxr-xr-x" || $2 != "root/root") { print }')
is "directories are 0755 root/root" "${baddirs:-ok}" "ok"
has "the package ships an empty /etc/$PKG/conf.d/" "$(printf '%s\n' "$listing" | awk '$1 ~ /^d/ { print $6 }')" "./etc/$PKG/conf.d/"
mkdir -p "$tmp/x"
dpkg-deb -x "$deb" "$tmp/x"
is "binary is stripped (no .symtab)" "$(readelf -S "$tmp/x/usr/bin/$PKG" | grep -c '\.symtab')" 0
is "packaged config is config/monitor.yml" "$(cmp "$config" "$tmp/x/etc/$PKG/monitor.yml" 2>&1 && echo same)" same
check "man page is gzip -9n (no name, no time stamp)" \
    bash -c "[ \"\$(od -An -tx1 -j3 -N5 '$tmp/x/usr/share/man/man1/$PKG.1.gz' | tr -d ' ')\" = 0000000000 ]"
check "changelog.Debian.gz names version $debversion" \
    bash -c "zcat '$tmp/x/usr/share/doc/$PKG/changelog.Debian.gz' | head -n 1 | grep -qF '($debversion)'"
www_diff=$(cd "$repo/www" && find . -type f ! -path '*/.*' -printf '%P\n' | while IFS= read -r f; do
    cmp -s "$f" "$tmp/x/usr/share/$PKG/www/$f" || echo "$f"; done)
is "packaged www files are this checkout's www/ (what the binary embeds)" "${www_diff:-same}" same
is "packaged openapi.json is src/server/openapi.json (what GET /api/openapi.json answers)" \
    "$(cmp "$repo/src/server/openapi.json" "$tmp/x/usr/share/$PKG/openapi.json" 2>&1 && echo same)" same
check "packaged openapi.json is JSON with an openapi version" python3 -c \
    'import json, sys; assert json.load(open(sys.argv[1]))["openapi"].startswith("3.1")' \
    "$tmp/x/usr/share/$PKG/openapi.json"
is "packaged blueprint is integrations/flask/chatstack_status_flask.py" \
    "$(cmp "$repo/integrations/flask/chatstack_status_flask.py" \
        "$tmp/x/usr/share/$PKG/integrations/chatstack_status_flask.py" 2>&1 && echo same)" same
check "packaged blueprint parses as Python 3.9" python3 -c \
    'import ast, sys; ast.parse(open(sys.argv[1]).read(), feature_version=(3, 9))' \
    "$tmp/x/usr/share/$PKG/integrations/chatstack_status_flask.py"
check "no __pycache__ or .pyc in the package" bash -c "! dpkg-deb -c '$deb' | grep -Eq '__pycache__|[.]pyc\$'"
check "copyright is machine-readable (DEP-5), MIT or Apache-2.0" \
    bash -c "head -n 1 '$tmp/x/usr/share/doc/$PKG/copyright' | grep -q '^Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/' &&
             grep -q '^License: MIT or Apache-2.0' '$tmp/x/usr/share/doc/$PKG/copyright' &&
             grep -q 'chatstack-status developers' '$tmp/x/usr/share/doc/$PKG/copyright'"

echo "# lintian"
lintian --fail-on error,warning "$deb" >"$tmp/lintian.log" 2>&1
rc=$?
out=$(grep -v '^running with root privileges is not recommended' "$tmp/lintian.log")
if [ "$rc" -eq 0 ]; then ok "lintian --fail-on error,warning"; else not_ok "lintian --fail-on error,warning" "$out"; fi

echo "# systemd units (before install: ExecStart pointed at the test binary)"
mkdir -p "$tmp/units"
for unit in $PKG.service $PKG-check.service $PKG-check.timer; do
    sed "s|/usr/bin/$PKG|$BINARY|g" "$repo/packaging/systemd/$unit" >"$tmp/units/$unit"
done
for unit in $PKG.service $PKG-check.service $PKG-check.timer; do
    quiet "systemd-analyze verify $unit" systemd-analyze verify --man=no "$tmp/units/$unit"
done
u=$repo/packaging/systemd/$PKG.service
# shellcheck disable=SC2016 # $MAINPID is systemd's
for kv in Type=notify "ExecStart=/usr/bin/$PKG run -c /etc/$PKG/monitor.yml" 'ExecReload=/bin/kill -HUP $MAINPID' \
    Restart=on-failure "User=$USER_NAME" "Group=$USER_NAME" WantedBy=multi-user.target Alias=status_monitor.service \
    ProtectSystem=strict NoNewPrivileges=yes CapabilityBoundingSet= UMask=0027 StateDirectoryMode=0750; do
    check "$PKG.service has $kv" grep -qxF "$kv" "$u"
done
check "$PKG.service has WatchdogSec=" grep -q '^WatchdogSec=[0-9]' "$u"
check "$PKG.service does not hide other processes (ProtectProc/ProcSubset/PrivateUsers)" \
    bash -c "! grep -Eq '^(ProtectProc=invisible|ProcSubset=pid|PrivateUsers=(yes|true|1))' '$u'"
u=$repo/packaging/systemd/$PKG-check.service
for kv in Type=oneshot "ExecStart=/usr/bin/$PKG check -c /etc/$PKG/monitor.yml --format text" \
    "SuccessExitStatus=1 2" "User=$USER_NAME" ProtectSystem=strict; do
    check "$PKG-check.service has $kv" grep -qxF "$kv" "$u"
done
u=$repo/packaging/systemd/$PKG-check.timer
for kv in OnBootSec=30s OnUnitActiveSec=30s AccuracySec=1s WantedBy=timers.target; do
    check "$PKG-check.timer has $kv" grep -qxF "$kv" "$u"
done

# --- install --------------------------------------------------------------
echo "# dpkg -i"
# Without polkit's rules directory the postinst skips the rule; create it for
# the duration of the test so that that path is tested too.
if [ ! -e /etc/polkit-1 ]; then
    created_polkit_dir=/etc/polkit-1
elif [ ! -e /etc/polkit-1/rules.d ]; then
    created_polkit_dir=/etc/polkit-1/rules.d
fi
[ -n "$created_polkit_dir" ] && mkdir -p /etc/polkit-1/rules.d
installed_by_us=true
check "dpkg -i" dpkg -i "$deb" </dev/null
check "dpkg -s: installed" bash -c "dpkg-query -W -f='\${Status}' $PKG | grep -qx 'install ok installed'"
check "$PKG --version" "/usr/bin/$PKG" --version
check "--version names $upstream" bash -c "/usr/bin/$PKG --version | grep -qF '$upstream'"
check "$PKG validate -c /etc/$PKG/monitor.yml" "/usr/bin/$PKG" validate -c "/etc/$PKG/monitor.yml"
check "man -w $PKG finds the page" bash -c "[ \"\$(man -w $PKG)\" = /usr/share/man/man1/$PKG.1.gz ]"
quiet "man -l renders the installed page without warnings" \
    bash -c "MANROFFSEQ='' MANWIDTH=80 man --warnings -E UTF-8 -l -Tutf8 -Z /usr/share/man/man1/$PKG.1.gz >/dev/null"
check "the rendered page has every section" bash -c "MANWIDTH=80 man -l /usr/share/man/man1/$PKG.1.gz 2>/dev/null | col -b >'$tmp/man.txt' &&
    for s in NAME SYNOPSIS DESCRIPTION COMMANDS OPTIONS 'EXIT STATUS' FILES ENVIRONMENT SIGNALS EXAMPLES 'SEE ALSO'; do
        grep -qx \"\$s\" '$tmp/man.txt' || { echo \"missing \$s\"; exit 1; }; done"
check "installed daemon unit runs as User=$USER_NAME" grep -qx "User=$USER_NAME" /lib/systemd/system/$PKG.service
for unit in $PKG.service $PKG-check.service $PKG-check.timer; do
    quiet "systemd-analyze verify installed $unit (with man page check)" \
        systemd-analyze verify --man=yes "/lib/systemd/system/$unit"
done
is "system user $USER_NAME: home, shell" \
    "$(getent passwd "$USER_NAME" | cut -d: -f6,7)" "/var/lib/chatstack:/usr/sbin/nologin"
uid=$(id -u "$USER_NAME" 2>/dev/null || echo none)
check "$USER_NAME is a system user (uid $uid < 1000)" bash -c "[ '$uid' -lt 1000 ] 2>/dev/null"
check "group $USER_NAME exists" getent group "$USER_NAME"
is "/var/lib/chatstack is 0750 $USER_NAME:$USER_NAME" \
    "$(stat -c '%a %U:%G' /var/lib/chatstack 2>&1)" "750 $USER_NAME:$USER_NAME"
is "/etc/$PKG/monitor.yml is 0640 root:$USER_NAME" \
    "$(stat -c '%a %U:%G' /etc/$PKG/monitor.yml 2>&1)" "640 root:$USER_NAME"
is "daemon enabled (multi-user.target.wants)" \
    "$(readlink /etc/systemd/system/multi-user.target.wants/$PKG.service)" "/lib/systemd/system/$PKG.service"
is "alias status_monitor.service" \
    "$(readlink /etc/systemd/system/status_monitor.service)" "/lib/systemd/system/$PKG.service"
check "timer NOT enabled" test ! -e /etc/systemd/system/timers.target.wants/$PKG-check.timer
check "postinst installed the polkit rule" test -s /etc/polkit-1/rules.d/50-$PKG.rules
if [ -s /etc/polkit-1/rules.d/50-$PKG.rules ]; then
    is "polkit rule is 0644 root" "$(stat -c '%a %U' /etc/polkit-1/rules.d/50-$PKG.rules)" "644 root"
    check_polkit_rule "installed polkit rule" /etc/polkit-1/rules.d/50-$PKG.rules
fi

echo "# the monitor's user can do its job with the installed permissions"
# A config with one local service on a refused port: no network, no systemd.
# It lives in /etc/chatstack-status like the real one (purge removes it).
localcfg=/etc/$PKG/test-deb-local.yml
printf 'services:\n  - name: Local\n    port: 127.0.0.1:1\n' >"$localcfg"
chown "root:$USER_NAME" "$localcfg" 2>/dev/null
chmod 0640 "$localcfg"
runuser -u "$USER_NAME" -- "/usr/bin/$PKG" check -c "$localcfg" --no-restart >"$tmp/check.out" 2>&1
is "check as $USER_NAME: exit 2 (CRITICAL: Local is down)" "$?" 2
is "check as $USER_NAME wrote /var/lib/chatstack/status.json 0640 $USER_NAME" \
    "$(stat -c '%a %U' /var/lib/chatstack/status.json 2>&1)" "640 $USER_NAME"
check "check as $USER_NAME wrote /var/lib/chatstack/state.json" test -s /var/lib/chatstack/state.json
runuser -u "$USER_NAME" -- "/usr/bin/$PKG" status -c "$localcfg" >"$tmp/status.out" 2>&1
is "status as $USER_NAME: exit 2" "$?" 2
rm -f "$localcfg"

echo "# www_dir: /usr/share/$PKG/www serves the installed files, the same bytes as the embedded ones"
# serve_as_user CONFIG LOG: starts `serve` as the monitor's user (setpriv execs, so $! is
# the server itself) and sets $served_port once it listens (bounded: 10 s), else "".
serve_as_user() {
    setpriv --reuid "$USER_NAME" --regid "$USER_NAME" --init-groups \
        "/usr/bin/$PKG" serve -c "$1" --listen 127.0.0.1:0 </dev/null >/dev/null 2>"$2" &
    serve_pids+=($!)
    served_port=""
    local i
    for i in $(seq 200); do
        served_port=$(sed -n 's/.*listening on 127[.]0[.]0[.]1:\([0-9][0-9]*\).*/\1/p' "$2" | head -n 1)
        [ -n "$served_port" ] && return
        kill -0 "${serve_pids[-1]}" 2>/dev/null || return
        [ "$i" -lt 200 ] && sleep 0.05
    done
}
wwwcfg=/etc/$PKG/test-deb-www.yml
embcfg=/etc/$PKG/test-deb-embedded.yml
printf 'www_dir: /usr/share/%s/www\nservices:\n  - name: Local\n    port: 127.0.0.1:1\n' "$PKG" >"$wwwcfg"
printf 'services:\n  - name: Local\n    port: 127.0.0.1:1\n' >"$embcfg"
chown "root:$USER_NAME" "$wwwcfg" "$embcfg"
chmod 0640 "$wwwcfg" "$embcfg"
check "validate accepts www_dir: /usr/share/$PKG/www" "/usr/bin/$PKG" validate -c "$wwwcfg"
serve_as_user "$wwwcfg" "$tmp/serve-www.log"
wport=$served_port
serve_as_user "$embcfg" "$tmp/serve-embedded.log"
eport=$served_port
if [ -n "$wport" ] && [ -n "$eport" ]; then
    ok "serve as $USER_NAME with and without www_dir (ports $wport, $eport)"
    for page in /:admin_status.html /static/admin_status.html:admin_status.html /static/js/status.js:js/status.js; do
        url=${page%%:*} file=/usr/share/$PKG/www/${page#*:}
        rm -f "$tmp/www.body" "$tmp/embedded.body"
        curl -fsS --max-time 5 -o "$tmp/www.body" "http://127.0.0.1:$wport$url" 2>/dev/null
        is "www_dir: GET $url is the installed $file" "$(cmp "$tmp/www.body" "$file" 2>&1 && echo same)" same
        curl -fsS --max-time 5 -o "$tmp/embedded.body" "http://127.0.0.1:$eport$url" 2>/dev/null
        is "embedded: GET $url is the same bytes" "$(cmp "$tmp/embedded.body" "$file" 2>&1 && echo same)" same
    done
    ctype=$(curl -sS --max-time 5 -o /dev/null -w '%{content_type}' "http://127.0.0.1:$wport/static/js/status.js")
    is "www_dir: the widget's Content-Type" "$ctype" "text/javascript; charset=utf-8"
    code=$(curl -sS --max-time 5 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$wport/static/nope.js")
    is "www_dir: a file not in it is 404" "$code" 404
else
    not_ok "serve as $USER_NAME with and without www_dir" "$(cat "$tmp/serve-www.log" "$tmp/serve-embedded.log")"
fi
stop_servers
rm -f "$wwwcfg" "$embcfg"

echo "# reinstall over an edited conffile"
echo "# local edit by test-deb.sh" >>/etc/$PKG/monitor.yml
echo '{"test": "state kept"}' >/var/lib/chatstack/test-state.json
check "dpkg -i --force-confold (same .deb)" dpkg -i --force-confold "$deb" </dev/null
check "the conffile edit survives" grep -qx "# local edit by test-deb.sh" /etc/$PKG/monitor.yml
check "the state survives" grep -q "state kept" /var/lib/chatstack/test-state.json
check "reinstall: no .dpkg-dist/.dpkg-new/.dpkg-old left" bash -c "! ls /etc/$PKG/*.dpkg-* 2>/dev/null | grep -q ."
is "config still 0640 root:$USER_NAME" "$(stat -c '%a %U:%G' /etc/$PKG/monitor.yml 2>&1)" "640 root:$USER_NAME"
check "validate still accepts the edited config" "/usr/bin/$PKG" validate -c "/etc/$PKG/monitor.yml"

echo "# upgrade to a newer package whose shipped config changed"
# A copy of the repo's packaging inputs with a changed config/monitor.yml,
# built as revision 2 of the same version.
repo2=$tmp/repo2
mkdir -p "$repo2/config" "$repo2/src/server"
cp -r "$repo/packaging" "$repo/www" "$repo/integrations" "$repo2/"
cp "$repo/src/server/openapi.json" "$repo2/src/server/"
cp "$repo/Cargo.toml" "$repo2/"
{ cat "$config"; echo "# changed in the newer package"; } >"$repo2/config/monitor.yml"
out=$(DEB_REVISION=2 bash "$repo2/packaging/build-deb.sh" "$BINARY" "$tmp/out2" 2>&1)
deb2=$(printf '%s\n' "$out" | tail -n 1)
if [ -f "$deb2" ]; then
    check "dpkg -i --force-confold (upgrade to $(dpkg-deb -f "$deb2" Version))" dpkg -i --force-confold "$deb2" </dev/null
    is "upgraded version" "$(dpkg-query -W -f='${Version}' "$PKG")" "$(dpkg-deb -f "$deb2" Version)"
    check "upgrade: the conffile edit survives" grep -qx "# local edit by test-deb.sh" /etc/$PKG/monitor.yml
    check "upgrade: the new shipped config is beside it as monitor.yml.dpkg-dist" \
        grep -qx "# changed in the newer package" /etc/$PKG/monitor.yml.dpkg-dist
    check "upgrade: the state survives" grep -q "state kept" /var/lib/chatstack/test-state.json
    is "upgrade: /var/lib/chatstack still 0750 $USER_NAME:$USER_NAME" \
        "$(stat -c '%a %U:%G' /var/lib/chatstack 2>&1)" "750 $USER_NAME:$USER_NAME"
    check "upgrade: daemon still enabled" test -L /etc/systemd/system/multi-user.target.wants/$PKG.service
else
    not_ok "build-deb.sh builds the newer .deb" "$out"
fi

echo "# remove, then purge"
check "dpkg -r" dpkg -r "$PKG" </dev/null
check "remove: binary gone" test ! -e /usr/bin/$PKG
check "remove: config kept" test -f /etc/$PKG/monitor.yml
check "remove: state kept" test -f /var/lib/chatstack/test-state.json
check "remove: user kept" getent passwd "$USER_NAME"
check "dpkg --purge" dpkg --purge "$PKG" </dev/null
left=""
for p in /etc/$PKG /var/lib/chatstack /usr/bin/$PKG /lib/systemd/system/$PKG.service \
    /etc/polkit-1/rules.d/50-$PKG.rules /etc/systemd/system/status_monitor.service \
    /etc/systemd/system/multi-user.target.wants/$PKG.service /usr/share/doc/$PKG /usr/share/$PKG; do
    if [ -e "$p" ] || [ -L "$p" ]; then left="$left $p"; fi
done
left="$left $(find /var/lib/systemd/deb-systemd-helper-enabled /var/lib/systemd/deb-systemd-helper-masked \
    -name "*$PKG*" 2>/dev/null | tr '\n' ' ')"
left=${left// /}
is "purge leaves no files" "${left:-nothing}" "nothing"
check "purge: user gone" bash -c "! getent passwd $USER_NAME"
check "purge: group gone" bash -c "! getent group $USER_NAME"
check "purge: dpkg forgot the package" bash -c "! dpkg-query -W $PKG 2>/dev/null"
if [ -n "$created_polkit_dir" ]; then
    rm -rf "$created_polkit_dir"
    created_polkit_dir=""
fi
installed_by_us=false

# --- install.sh -------------------------------------------------------------
echo "# install.sh"
dest=$tmp/destdir
mkdir -p "$dest"
export BINARY
check "install.sh into DESTDIR" env DESTDIR="$dest" sh "$repo/packaging/install.sh" /usr/local
for f in usr/local/bin/$PKG:755 etc/$PKG/monitor.yml:640 etc/systemd/system/$PKG.service:644 \
    etc/systemd/system/$PKG-check.service:644 etc/systemd/system/$PKG-check.timer:644 \
    usr/local/share/man/man1/$PKG.1:644 usr/local/share/bash-completion/completions/$PKG:644 \
    usr/local/share/zsh/site-functions/_$PKG:644 usr/local/share/doc/$PKG/examples/alerts.yml:644 \
    usr/local/share/doc/$PKG/examples/scrape.yml:644 var/lib/chatstack:750 \
    usr/local/share/doc/$PKG/examples/targets.yml:644 usr/local/share/doc/$PKG/examples/alertmanager.yml:644 \
    usr/local/share/$PKG/www/admin_status.html:644 usr/local/share/$PKG/www/js/status.js:644 \
    usr/local/share/$PKG/integrations/chatstack_status_flask.py:644 etc/$PKG/conf.d:755 \
    usr/local/share/$PKG/openapi.json:644 usr/local/share/doc/$PKG/examples/rules.yml:644 \
    usr/local/share/doc/$PKG/examples/dashboard.json:644 \
    usr/local/share/doc/$PKG/examples/nginx-status-location.conf:644; do
    is "install.sh: /${f%:*} mode ${f##*:}" "$(stat -c %a "$dest/${f%:*}" 2>&1)" "${f##*:}"
done
is "install.sh: daemon ExecStart under PREFIX" "$(grep '^ExecStart=' "$dest/etc/systemd/system/$PKG.service")" \
    "ExecStart=/usr/local/bin/$PKG run -c /etc/$PKG/monitor.yml"
is "install.sh: check ExecStart under PREFIX" "$(grep '^ExecStart=' "$dest/etc/systemd/system/$PKG-check.service")" \
    "ExecStart=/usr/local/bin/$PKG check -c /etc/$PKG/monitor.yml --format text"
sed "s|/usr/local/bin/$PKG|$dest/usr/local/bin/$PKG|" "$dest/etc/systemd/system/$PKG.service" >"$tmp/units/is-$PKG.service"
quiet "install.sh: its daemon unit passes systemd-analyze verify" systemd-analyze verify --man=no "$tmp/units/is-$PKG.service"
out=$(DESTDIR="$dest" sh "$repo/packaging/install.sh" /usr/local 2>&1)
rc=$?
is "install.sh twice: exit 0" "$rc" 0
check "install.sh twice: config unchanged, no monitor.yml.new" test ! -e "$dest/etc/$PKG/monitor.yml.new"
has "install.sh prints the next steps: daemon-reload" "$out" "systemctl daemon-reload"
has "install.sh prints the next steps: enable --now" "$out" "systemctl enable --now $PKG.service"
www_diff=$(cd "$repo/www" && find . -type f ! -path '*/.*' -printf '%P\n' | while IFS= read -r f; do
    cmp -s "$f" "$dest/usr/local/share/$PKG/www/$f" || echo "$f"; done)
is "install.sh: PREFIX/share/$PKG/www is this checkout's www/" "${www_diff:-same}" same
check "install.sh --uninstall" env DESTDIR="$dest" sh "$repo/packaging/install.sh" --uninstall /usr/local
check "install.sh --uninstall removes PREFIX/share/$PKG" test ! -e "$dest/usr/local/share/$PKG"
is "install.sh --uninstall leaves no files in DESTDIR" "$(find "$dest" ! -type d | head)" ""
check "install.sh --uninstall twice" env DESTDIR="$dest" sh "$repo/packaging/install.sh" --uninstall /usr/local

dest2=$tmp/destdir2
mkdir -p "$dest2"
DESTDIR="$dest2" sh "$repo/packaging/install.sh" /opt/chatstack >/dev/null 2>&1
echo "# edited" >>"$dest2/etc/$PKG/monitor.yml"
out=$(DESTDIR="$dest2" sh "$repo/packaging/install.sh" /opt/chatstack 2>&1)
check "install.sh over an edited config: the edit is kept" grep -qx '# edited' "$dest2/etc/$PKG/monitor.yml"
check "install.sh over an edited config: the shipped one is monitor.yml.new" cmp "$config" "$dest2/etc/$PKG/monitor.yml.new"
has "install.sh over an edited config: says so" "$out" "monitor.yml.new"
DESTDIR="$dest2" sh "$repo/packaging/install.sh" --uninstall /opt/chatstack >/dev/null 2>&1
is "install.sh --uninstall keeps only the edited config" "$(cd "$dest2" && find . ! -type d)" "./etc/$PKG/monitor.yml"
out=$(env -u BINARY DESTDIR="$tmp/destdir3" sh "$repo/packaging/install.sh" /usr/local 2>&1)
rc=$?
if [ -x "$repo/target/release/$PKG" ]; then
    is "install.sh defaults to target/release/$PKG" "$rc" 0
else
    check "install.sh without a binary fails" test "$rc" -ne 0
    has "install.sh without a binary says why" "$out" "cargo build --release"
fi

# --- static checks ----------------------------------------------------------
echo "# shellcheck"
for f in packaging/install.sh packaging/build-deb.sh packaging/debian/postinst packaging/debian/prerm \
    packaging/debian/postrm tests/packaging/test-deb.sh tests/packaging/test-systemd.sh; do
    check "shellcheck $f" shellcheck -x "$repo/$f"
done
check "shellcheck packaging/completions/$PKG.bash" shellcheck -s bash "$repo/packaging/completions/$PKG.bash"

echo "# completions"
for cmd in check run serve status validate mute unmute ping notify-test polkit-rule history incidents report fleet; do
    check "bash completion names '$cmd'" grep -qw -- "$cmd" "$repo/packaging/completions/$PKG.bash"
    check "zsh completion names '$cmd'" grep -q -- "'$cmd:" "$repo/packaging/completions/_$PKG"
done
for flag in --config --no-restart --format --only --listen --no-http --for --reason --fail --exit-code --message --since --step --limit --version --help; do
    check "bash completion has $flag" grep -q -- "$flag" "$repo/packaging/completions/$PKG.bash"
    check "zsh completion has $flag" grep -q -- "$flag" "$repo/packaging/completions/_$PKG"
done
check "bash completion: 'chatstack-status <TAB>' offers the 15 subcommands" bash -c "
    . '$repo/packaging/completions/$PKG.bash'
    COMP_WORDS=($PKG ''); COMP_CWORD=1; COMP_LINE='$PKG '; COMP_POINT=\${#COMP_LINE}
    _chatstack_status $PKG '' $PKG
    [ \"\${COMPREPLY[*]}\" = 'check run serve status validate mute unmute ping notify-test polkit-rule history incidents report fleet maintenance' ] || { echo \"\${COMPREPLY[*]}\"; exit 1; }"
check "bash completion: 'check --only <TAB>' offers the config's services" bash -c "
    . '$repo/packaging/completions/$PKG.bash'
    COMP_WORDS=($PKG check -c '$config' --only ''); COMP_CWORD=5; COMP_LINE='x'; COMP_POINT=1
    _chatstack_status $PKG '' --only
    [ \${#COMPREPLY[@]} -ge 1 ] || exit 1
    n=\$(grep -Ec '^[[:space:]]*-[[:space:]]*name:' '$config'); [ \${#COMPREPLY[@]} -eq \"\$n\" ] || { echo \"\${COMPREPLY[*]} (expected \$n)\"; exit 1; }"
if command -v zsh >/dev/null 2>&1; then
    check "zsh -n _$PKG" zsh -n "$repo/packaging/completions/_$PKG"
else
    skip "zsh -n _$PKG (zsh not installed)"
fi

echo "# man page source"
quiet "man --warnings on packaging/man/$PKG.1 (lintian's check)" \
    bash -c "MANROFFSEQ='' MANWIDTH=80 man --warnings -E UTF-8 -l -Tutf8 -Z '$repo/packaging/man/$PKG.1' >/dev/null"
for cmd in check run serve status validate mute unmute ping notify-test polkit-rule history incidents report fleet; do
    check "man page documents '$cmd'" grep -q "^\.B ${cmd//-/\\\\-}" "$repo/packaging/man/$PKG.1"
done
for env in CHATSTACK_STATUS_CONFIG CHATSTACK_STATUS_FILE CHATSTACK_STATE_FILE CHATSTACK_HISTORY_DB CHATSTACK_STATUS_STALE NO_COLOR NOTIFY_SOCKET; do
    check "man page documents $env" grep -qx ".B $env" "$repo/packaging/man/$PKG.1"
done

echo "# prometheus"
check "promtool check config scrape.yml" promtool check config "$repo/packaging/prometheus/scrape.yml"
check "promtool check rules alerts.yml" promtool check rules "$repo/packaging/prometheus/alerts.yml"
check "promtool test rules alerts_test.yml" promtool test rules "$repo/packaging/prometheus/alerts_test.yml"
check "promtool check rules rules.yml" promtool check rules "$repo/packaging/prometheus/rules.yml"
check "promtool test rules rules_test.yml" promtool test rules "$repo/packaging/prometheus/rules_test.yml"
check "amtool check-config alertmanager.yml" amtool check-config "$repo/packaging/prometheus/alertmanager.yml"
for a in ChatstackServiceDown ChatstackHealSuspended ChatstackAgentStale ChatstackCheckStale ChatstackAgentAbsent; do
    check "alerts.yml has $a" grep -q "alert: $a\$" "$repo/packaging/prometheus/alerts.yml"
done

echo "# polkit rule from the binary"
if "$BINARY" polkit-rule -c "$config" >"$tmp/rule.js" 2>"$tmp/rule.err"; then
    ok "$PKG polkit-rule -c config/monitor.yml"
    check_polkit_rule "polkit-rule output" "$tmp/rule.js"
else
    not_ok "$PKG polkit-rule -c config/monitor.yml" "$(cat "$tmp/rule.err")"
fi

finish
