#!/bin/bash
# Certificate reading's cost: `check` of 4 https targets on loopback, with
# certificate reading (this tree) vs without (the tree before it, BASE_REV,
# whose stock ureq rustls connector is given the test CA through $BENCH_CA by
# a 15-line patch, since it cannot otherwise trust one). Interleaved paired
# wall/CPU times (bench/paired.py), hyperfine, and callgrind instruction counts.
# Run on a quiet machine: it builds a second release binary (~3 min).
#   bash bench/certs.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-300}
BASE_REV=${BASE_REV:-65e1d0b}
W=$(mktemp -d /tmp/chatstack-certs-bench.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$W"; }
trap cleanup EXIT

cargo build --locked --release
cp target/release/chatstack-status "$W/certs"

# The baseline: BASE_REV plus $BENCH_CA as its only trusted root, built in
# this tree's target/ (dependencies shared) under another binary name.
mkdir "$W/base" && git archive "$BASE_REV" | tar -x -C "$W/base"
python3 - "$W/base/src/probe/http.rs" <<'PY'
import sys
p = sys.argv[1]; s = open(p).read()
s = s.replace("""        .max_idle_connections_per_host(2)
        .build()
        .new_agent()""", """        .max_idle_connections_per_host(2)
        .tls_config(bench_tls())
        .build()
        .new_agent()""", 1)
s += '''
fn bench_tls() -> ureq::tls::TlsConfig {
    let mut b = ureq::tls::TlsConfig::builder();
    if let Some(pem) = std::env::var_os("BENCH_CA").and_then(|p| std::fs::read(p).ok()) {
        let certs: Vec<_> = ureq::tls::parse_pem(&pem)
            .filter_map(|i| match i {
                Ok(ureq::tls::PemItem::Certificate(c)) => Some(c.to_owned()),
                _ => None,
            })
            .collect();
        b = b.root_certs(ureq::tls::RootCerts::new_with_certs(&certs));
    }
    b.build()
}
'''
open(p, "w").write(s)
PY
sed -i '/^\[\[bin\]\]/,/^path/s/^name = "chatstack-status"/name = "chatstack-baseline"/' "$W/base/Cargo.toml"
(cd "$W/base" && CARGO_TARGET_DIR="$OLDPWD/target" cargo build --locked --release --bin chatstack-baseline)
cp target/release/chatstack-baseline "$W/baseline"

# A test CA, a leaf for 127.0.0.1 (90 days), four openssl s_server.
cd "$W"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 365 -subj "/CN=Bench CA" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign -keyout ca.key -out ca.pem 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=bench" -keyout leaf.key -out leaf.csr 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' > ext.cnf
openssl x509 -req -in leaf.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 90 -extfile ext.cnf -out leaf.pem 2>/dev/null
cat /etc/ssl/certs/ca-certificates.crt ca.pem > system-plus-ca.crt 2>/dev/null || cp ca.pem system-plus-ca.crt
ports=$(python3 -c "
import socket
ss = [socket.socket() for _ in range(4)]
for s in ss: s.bind(('127.0.0.1', 0))
print(' '.join(str(s.getsockname()[1]) for s in ss))")
for p in $ports; do
    openssl s_server -quiet -www -accept "127.0.0.1:$p" -cert leaf.pem -key leaf.key </dev/null >/dev/null 2>&1 &
    pids+=($!)
done
sleep 0.5
for name in base certs system; do
    { echo "status_file: $W/status-$name.json"; echo "state_file: $W/state-$name.json"
      echo "timeout: 2s"; echo "heal: {enabled: false}"; echo "services:"
      i=0
      for p in $ports; do
          extra=""; [ "$name" = certs ] && extra=", ca_file: $W/ca.pem"
          echo "  - name: app$i"; echo "    checks:"; echo "      - {type: http, url: 'https://127.0.0.1:$p/'$extra}"
          i=$((i + 1))
      done; } > "$name.yml"
done
export BENCH_CA="$W/ca.pem" SSL_CERT_FILE="$W/system-plus-ca.crt"
./baseline check -c base.yml >/dev/null && ./certs check -c certs.yml >/dev/null && ./certs check -c system.yml >/dev/null

echo "== interleaved, $RUNS pairs each"
python3 "$OLDPWD/bench/paired.py" "$RUNS" "./baseline check -c base.yml" "./certs check -c certs.yml"
python3 "$OLDPWD/bench/paired.py" "$RUNS" "./baseline check -c base.yml" "./certs check -c system.yml"
echo "== hyperfine"
hyperfine -N -w 20 -r "$RUNS" "./baseline check -c base.yml" "./certs check -c certs.yml" "./certs check -c system.yml"
if command -v valgrind >/dev/null; then
    echo "== instructions (callgrind, whole process)"
    for run in "baseline check -c base.yml" "certs check -c certs.yml" "certs check -c system.yml"; do
        # shellcheck disable=SC2086
        n=$(valgrind --tool=callgrind --callgrind-out-file="$W/cg.out" ./$run 2>&1 | sed -n 's/.*Collected : //p')
        echo "$run: $n"
    done
fi
