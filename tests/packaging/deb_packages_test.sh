#!/usr/bin/env bash
# Builds the Debian packages with CPack and checks them without installing them
# on this machine (docs/deploy.md says what was installed by hand):
#   - every package exists and holds its files (binaries, /etc/miroir configs
#     marked as conffiles, systemd units, maintainer scripts creating the user);
#   - the runtime dependencies came from dpkg-shlibdeps (libc6, gRPC, ...);
#   - the extracted binaries answer --version with the project version;
#   - the miroir-dev package alone compiles and links a client program
#     (pkg-config miroir-client) that runs;
#   - the units pass `systemd-analyze verify` with no message at all.
# usage: deb_packages_test.sh BUILD_DIR SOURCE_DIR PROJECT_VERSION
set -euo pipefail
build=$1
src=$2
version=$3
out=$(mktemp -d "${TMPDIR:-/tmp}/miroir-deb-XXXXXX")
trap 'rm -rf "$out"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

(cd "$build" && cpack -G DEB -B "$out" >"$out/cpack.log" 2>&1) || { cat "$out/cpack.log"; fail "cpack"; }

deb() {
  local f
  f=$(ls "$out"/"$1"_"$version"*_*.deb 2>/dev/null | head -1)
  [ -n "$f" ] || fail "package $1 was not built: $(ls "$out")"
  echo "$f"
}
has_file() {  # package path
  dpkg-deb -c "$(deb "$1")" | awk '{print $6}' | grep -qx ".$2" || fail "$1 lacks $2"
}
field() { dpkg-deb -f "$(deb "$1")" "$2"; }
depends_on() {  # package regex
  field "$1" Depends | tr ',' '\n' | grep -Eq "^ *$2" || fail "$1 does not depend on $2: $(field "$1" Depends)"
}

for p in miroir-coordinator miroir-worker miroir-ctl miroir-dev; do
  [ "$(field $p Package)" = "$p" ] || fail "$p: wrong Package field"
  [ "$(field $p Version)" = "$version" ] || fail "$p: version $(field $p Version) != $version"
done

has_file miroir-coordinator /usr/bin/miroir-coordinator
has_file miroir-coordinator /etc/miroir/coordinator.yaml
has_file miroir-coordinator /usr/lib/systemd/system/miroir-coordinator.service
has_file miroir-worker /usr/bin/miroir-worker
has_file miroir-worker /etc/miroir/worker.yaml
has_file miroir-worker /usr/lib/systemd/system/miroir-worker.service
has_file miroir-ctl /usr/bin/miroir-ctl
has_file miroir-dev /usr/include/miroir/client.h
has_file miroir-dev /usr/lib/libmiroir_client.a
has_file miroir-dev /usr/lib/pkgconfig/miroir-client.pc
# Nothing of one package in another.
dpkg-deb -c "$(deb miroir-ctl)" | grep -q "etc/miroir" && fail "miroir-ctl ships a config"
dpkg-deb -c "$(deb miroir-worker)" | grep -q "miroir-coordinator" && fail "miroir-worker ships the coordinator"

# Runtime dependencies computed by dpkg-shlibdeps.
for p in miroir-coordinator miroir-worker miroir-ctl; do
  depends_on $p "libc6 "
  depends_on $p "libgrpc\\+\\+"
  depends_on $p "libprotobuf"
done
depends_on miroir-coordinator "libsqlite3"
depends_on miroir-worker "libhiredis"
depends_on miroir-dev "libgrpc\\+\\+-dev"

# Conffiles and maintainer scripts.
for c in coordinator worker; do
  dpkg-deb -e "$(deb miroir-$c)" "$out/ctrl-$c"
  grep -qx "/etc/miroir/$c.yaml" "$out/ctrl-$c/conffiles" || fail "miroir-$c: config not a conffile"
  grep -q "useradd --system" "$out/ctrl-$c/postinst" || fail "miroir-$c: postinst creates no user"
  sh -n "$out/ctrl-$c/postinst" && sh -n "$out/ctrl-$c/prerm" && sh -n "$out/ctrl-$c/postrm" ||
    fail "miroir-$c: maintainer script syntax"
done

# The binaries run from the package's files and say what they are.
root="$out/root"
for p in miroir-coordinator miroir-worker miroir-ctl miroir-dev; do dpkg-deb -x "$(deb $p)" "$root"; done
for b in miroir-coordinator miroir-worker miroir-ctl; do
  line=$("$root/usr/bin/$b" --version)
  [[ "$line" == "$b $version (commit "*")" ]] || fail "$b --version said '$line'"
  echo "$line"
done

# The -dev package is enough to build and run a client program.
cat >"$out/consumer.cc" <<'CC'
#include <cstdio>
#include "miroir/client.h"
int main() {
  using namespace miroir::client;
  auto bad = ValidateMutation(Mutation::Put("products", "", "{}"));
  miroir::client::ClientOptions o;
  o.workers = {"127.0.0.1:1"};
  auto c = Client::Create(o);
  std::printf("%s|%d\n", std::string(bad.message()).c_str(), c.ok() ? 1 : 0);
  return bad.code() == absl::StatusCode::kInvalidArgument && c.ok() ? 0 : 1;
}
CC
pc="$root/usr/lib/pkgconfig"
flags=$(PKG_CONFIG_PATH="$pc" pkg-config --cflags --libs miroir-client) || fail "pkg-config miroir-client"
# shellcheck disable=SC2086
g++ -std=c++20 -O0 "$out/consumer.cc" -o "$out/consumer" $flags || fail "client program does not build"
said=$("$out/consumer") || fail "client program failed: $said"
[ "$said" = "pk: must not be empty|1" ] || fail "client program said '$said'"

# Units: verified with the host's systemd, ExecStart pointed at the extracted binary.
if command -v systemd-analyze >/dev/null; then
  mkdir -p "$out/units"
  for c in coordinator worker; do
    sed "s|/usr/bin/miroir-$c|$root/usr/bin/miroir-$c|" \
      "$root/usr/lib/systemd/system/miroir-$c.service" >"$out/units/miroir-$c.service"
  done
  msgs=$(cd "$out" && systemd-analyze verify --man=no units/*.service 2>&1) || fail "verify: $msgs"
  [ -z "$msgs" ] || fail "systemd-analyze verify: $msgs"
  echo "systemd-analyze verify: both units clean"
else
  # No systemd here: check the sections and the hardening keys by hand.
  for c in coordinator worker; do
    u="$src/deploy/systemd/miroir-$c.service"
    for k in '^\[Unit\]' '^\[Service\]' '^\[Install\]' '^ExecStart=/usr/bin/' '^User=miroir' \
             '^NoNewPrivileges=yes' '^ProtectSystem=strict' '^ProtectHome=yes'; do
      grep -q "$k" "$u" || fail "$u lacks $k"
    done
  done
  echo "systemd-analyze not installed: unit syntax checked by grep only"
fi
grep -q '^StateDirectory=miroir-coordinator' "$root/usr/lib/systemd/system/miroir-coordinator.service" ||
  fail "coordinator unit has no StateDirectory"
echo "packages OK: $(cd "$out" && ls ./*.deb | xargs -n1 basename | tr '\n' ' ')"
