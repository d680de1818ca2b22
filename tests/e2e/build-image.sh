#!/usr/bin/env bash
# Builds a small multi-layer OCI image archive (the `ctr images import` format) with plain
# shell tools: tar, sha256sum, gzip (only with COMPRESS=gzip).
#
#   tests/e2e/build-image.sh OUT.tar LAYERS [NAME]
#
# LAYERS >= 3. NAME defaults to localhost/overlaysnap-e2e:LAYERS and is stored in the
# index as both `io.containerd.image.name` (the full name, what ctr uses) and
# `org.opencontainers.image.ref.name` (the tag).
#
# Layers (every file under /etc/e2e says which layer wrote it):
#   1  base: /bin/busybox (static) + a symlink per applet in /bin, /etc/passwd, /etc/group,
#      /tmp (1777), mount points /proc /sys /dev /root, /etc/e2e/layer1
#   2  adds: /etc/e2e/layer2, /data/keep.txt, /data/gone.txt, /data/dir/old.txt,
#      /data/dir/sub/old2.txt, /etc/e2e/top = 2
#   3  deletes /data/gone.txt (whiteout data/.wh.gone.txt), replaces /data/dir (opaque
#      data/dir/.wh..wh..opq + data/dir/new.txt), adds /etc/e2e/layer3, /etc/e2e/top = 3
#   4.. each adds /layers/NNNN and overwrites /etc/e2e/top with its number
#
# So in a container of the image: cat /etc/e2e/top == LAYERS, ls /layers | wc -l ==
# LAYERS-3, /data/gone.txt absent, ls /data/dir == new.txt.
#
# Environment: BUSYBOX (default: /bin/busybox, must be static), COMPRESS=gzip to gzip the
# layers (default: uncompressed), ARCH (default: from uname -m).
# Output is deterministic for the same inputs (fixed mtimes, owners, order).
set -euo pipefail

usage() { echo "usage: $0 OUT.tar LAYERS [NAME]" >&2; exit 2; }
if [ $# -lt 2 ] || [ $# -gt 3 ]; then usage; fi
out=$1
layers=$2
case $layers in '' | *[!0-9]*) usage ;; esac
[ "$layers" -ge 3 ] || { echo "$0: LAYERS must be >= 3" >&2; exit 2; }
name=${3:-localhost/overlaysnap-e2e:$layers}
tag=${name##*:}
busybox=${BUSYBOX:-/bin/busybox}
compress=${COMPRESS:-}
[ -x "$busybox" ] || { echo "$0: $busybox not found (apt-get install busybox-static)" >&2; exit 1; }
if ldd "$busybox" >/dev/null 2>&1; then # ldd fails on a static executable
    echo "$0: $busybox is not statically linked (apt-get install busybox-static)" >&2
    exit 1
fi
case ${ARCH:-$(uname -m)} in
    x86_64 | amd64) arch=amd64 ;;
    aarch64 | arm64) arch=arm64 ;;
    *) arch=${ARCH:-$(uname -m)} ;;
esac

umask 022
work=$(mktemp -d "${TMPDIR:-/tmp}/build-image.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/oci/blobs/sha256"
blobs=$work/oci/blobs/sha256
epoch=1700000000

sha() { sha256sum "$1" | cut -d' ' -f1; }
size() { stat -c %s "$1"; }

# Writes stdin to a blob; prints "DIGEST SIZE".
put_blob() {
    local tmp=$work/blob.tmp d
    cat >"$tmp"
    d=$(sha "$tmp")
    mv "$tmp" "$blobs/$d"
    echo "sha256:$d $(size "$blobs/$d")"
}

# Tars the contents of directory $1 (not the directory itself) reproducibly to stdout.
tar_dir() {
    local dir=$1 entries
    entries=$(cd "$dir" && find . -mindepth 1 -maxdepth 1 -printf '%P\n' | LC_ALL=C sort)
    # shellcheck disable=SC2086 # entries are names this script chose, without spaces
    (cd "$dir" && tar --format=gnu --sort=name --owner=0 --group=0 --numeric-owner \
        --mtime="@$epoch" -cf - $entries)
}

layer_digests=()  # compressed (blob) digests
layer_sizes=()
diff_ids=()       # uncompressed digests
history=()

add_layer() {
    local dir=$1 comment=$2 plain=$work/layer.tar d s
    tar_dir "$dir" >"$plain"
    d=$(sha "$plain")
    diff_ids+=("sha256:$d")
    if [ "$compress" = gzip ]; then
        read -r d s < <(gzip -n -6 <"$plain" | put_blob)
    else
        s=$(size "$plain")
        mv "$plain" "$blobs/$d"
        d=sha256:$d
    fi
    layer_digests+=("$d")
    layer_sizes+=("$s")
    history+=("$comment")
    rm -f "$plain"
}

write_file() { mkdir -p "$(dirname "$1")"; printf '%s\n' "$2" >"$1"; }

# Layer 1: base.
l=$work/l1
mkdir -p "$l/bin" "$l/etc/e2e" "$l/tmp" "$l/proc" "$l/sys" "$l/dev" "$l/root"
chmod 1777 "$l/tmp"
chmod 700 "$l/root"
cp "$busybox" "$l/bin/busybox"
chmod 755 "$l/bin/busybox"
for applet in $("$busybox" --list); do
    [ "$applet" = busybox ] || ln -s busybox "$l/bin/$applet"
done
write_file "$l/etc/passwd" "root:x:0:0:root:/root:/bin/sh"
write_file "$l/etc/group" "root:x:0:"
write_file "$l/etc/e2e/layer1" "layer1: base"
add_layer "$l" "base: busybox"

# Layer 2: adds files.
l=$work/l2
write_file "$l/etc/e2e/layer2" "layer2: added"
write_file "$l/etc/e2e/top" "2"
write_file "$l/data/keep.txt" "keep: from layer2"
write_file "$l/data/gone.txt" "gone: deleted by layer3"
write_file "$l/data/dir/old.txt" "old: hidden by layer3's opaque dir"
write_file "$l/data/dir/sub/old2.txt" "old2: hidden by layer3's opaque dir"
add_layer "$l" "adds /data and /etc/e2e/layer2"

# Layer 3: a whiteout and an opaque directory.
l=$work/l3
write_file "$l/etc/e2e/layer3" "layer3: whiteout + opaque"
write_file "$l/etc/e2e/top" "3"
mkdir -p "$l/data/dir"
: >"$l/data/.wh.gone.txt"
: >"$l/data/dir/.wh..wh..opq"
write_file "$l/data/dir/new.txt" "new: from layer3"
add_layer "$l" "deletes /data/gone.txt, replaces /data/dir"

# Layers 4..N.
for ((i = 4; i <= layers; i++)); do
    l=$work/l$i
    n=$(printf '%04d' "$i")
    write_file "$l/layers/$n" "layer $i"
    write_file "$l/etc/e2e/top" "$i"
    add_layer "$l" "adds /layers/$n"
    rm -rf "$l"
done

if [ "$compress" = gzip ]; then
    layer_type=application/vnd.oci.image.layer.v1.tar+gzip
else
    layer_type=application/vnd.oci.image.layer.v1.tar
fi

join() { local IFS=,; echo "$*"; }

# Config.
ids=()
for d in "${diff_ids[@]}"; do ids+=("\"$d\""); done
hist=()
for h in "${history[@]}"; do hist+=("{\"created\":\"2023-11-14T22:13:20Z\",\"created_by\":\"$h\"}"); done
config="{\"architecture\":\"$arch\",\"os\":\"linux\",\"created\":\"2023-11-14T22:13:20Z\",\
\"config\":{\"Env\":[\"PATH=/bin\"],\"Cmd\":[\"/bin/sh\"],\"WorkingDir\":\"/\"},\
\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[$(join "${ids[@]}")]},\
\"history\":[$(join "${hist[@]}")]}"
read -r config_digest config_size < <(printf '%s' "$config" | put_blob)

# Manifest.
descs=()
for ((i = 0; i < ${#layer_digests[@]}; i++)); do
    descs+=("{\"mediaType\":\"$layer_type\",\"digest\":\"${layer_digests[$i]}\",\"size\":${layer_sizes[$i]}}")
done
manifest="{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\
\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"$config_digest\",\"size\":$config_size},\
\"layers\":[$(join "${descs[@]}")]}"
read -r manifest_digest manifest_size < <(printf '%s' "$manifest" | put_blob)

# Index + layout.
printf '%s' "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\",\
\"manifests\":[{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\
\"digest\":\"$manifest_digest\",\"size\":$manifest_size,\
\"platform\":{\"architecture\":\"$arch\",\"os\":\"linux\"},\
\"annotations\":{\"io.containerd.image.name\":\"$name\",\"org.opencontainers.image.ref.name\":\"$tag\"}}]}" \
    >"$work/oci/index.json"
printf '%s' '{"imageLayoutVersion":"1.0.0"}' >"$work/oci/oci-layout"

mkdir -p "$(dirname "$out")"
tar -C "$work/oci" --format=gnu --sort=name --owner=0 --group=0 --numeric-owner \
    --mtime="@$epoch" -cf "$out.tmp" oci-layout index.json blobs
mv "$out.tmp" "$out"
echo "built $out: $name, $layers layers, manifest $manifest_digest" >&2
