#!/bin/sh
# device-bundle.sh -- `make device-bundle`: one folder that runs llmux on a
# machine with a GPU and nothing installed but glibc (2.36, Debian 12's, or
# newer): the five programs, the GPU tools, every shared library they need
# beyond glibc (found with ldd), the fake GPU libraries (for --dry), the
# device-run scripts and the configuration they fill in.
#
#     tools/device-bundle.sh BUILD OUT
#
# Layout: bin/ (wrappers that set LD_LIBRARY_PATH to lib/ and exec the
# program in libexec/), lib/, libexec/, fakes/, etc/, tests/gpu/ (the
# run's scripts), README, MANIFEST.
# Refuses to write a bundle of 60 MiB or more.
set -eu

BUILD=$1
OUT=$2
ROOT=$(cd "$(dirname "$0")/.." && pwd)
LIMIT=$((60 * 1024 * 1024))
PROGS="llmux-supervisord llmux-proxyd llmuxctl llmux-fakevllm llmux-sim"
TOOLS="gpu_check gpu_copy"
# glibc's own libraries: the machine's are used, never copied.
GLIBC='^(ld-linux.*|libc|libm|libdl|libpthread|librt|libresolv|libutil|libnsl|libanl|libmvec|libBrokenLocale|libnss_.*|libthread_db)\.so'

TMP=$OUT.tmp
rm -rf "$TMP"
mkdir -p "$TMP/bin" "$TMP/libexec" "$TMP/lib" "$TMP/fakes" "$TMP/etc" \
    "$TMP/tests/gpu"

for p in $PROGS; do
	cp "$BUILD/bin/$p" "$TMP/libexec/$p"
done
for t in $TOOLS; do
	cp "$BUILD/gpu/$t" "$TMP/libexec/$t"
done
cp "$BUILD/fakes/libcuda.so" "$BUILD/fakes/libnvidia-ml.so" "$TMP/fakes/"
# Debug information stays in the build; symbols stay for backtraces.
for f in "$TMP"/libexec/* "$TMP"/fakes/*; do
	strip --strip-debug "$f"
done

# Every library the programs load, but glibc's, copied under its soname.
for f in "$TMP"/libexec/* "$TMP"/fakes/*; do
	ldd "$f" | awk '$2 == "=>" && $3 ~ /^\// { print $1, $3 }'
done | sort -u | while read -r name path; do
	if echo "$name" | grep -Eq "$GLIBC"; then
		continue
	fi
	cp -L "$path" "$TMP/lib/$name"
	strip --strip-debug "$TMP/lib/$name" 2>/dev/null || true
done
for f in "$TMP"/libexec/*; do
	if ldd "$f" | grep -q 'not found'; then
		echo "device-bundle: $f needs a library that is not here:" >&2
		ldd "$f" | grep 'not found' >&2
		exit 1
	fi
done

for p in $PROGS $TOOLS; do
	cat >"$TMP/bin/$p" <<EOF
#!/bin/sh
# $p from the llmux device bundle, with the bundle's libraries.
p=\$0
case \$p in */*) ;; *) p=\$(command -v -- "\$p") ;; esac
d=\$(cd "\${p%/*}/.." && pwd)
LD_LIBRARY_PATH="\$d/lib\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}"
export LD_LIBRARY_PATH
exec "\$d/libexec/$p" "\$@"
EOF
	chmod 755 "$TMP/bin/$p"
done

cp "$ROOT/tests/gpu/device-run.sh" "$ROOT/tests/gpu/device_run.py" \
    "$ROOT/tests/gpu/device_stack.py" \
    "$ROOT/tests/gpu/holder.py" "$TMP/tests/gpu/"
cp "$ROOT/etc/device-run.yaml.in" "$TMP/etc/"
cat >"$TMP/README" <<'EOF'
llmux device bundle (make device-bundle; docs/gpu.md, "On a real GPU").

Run the whole stack on a machine with an NVIDIA GPU (driver 570 or later,
root, python3; nothing else installed):

    tests/gpu/device-run.sh --bundle DIR          (from a source tree)
    DIR/tests/gpu/device-run.sh                   (from the bundle alone)

Figures go to $OUT/device-run.txt and device-run.json when OUT is set.
--dry runs the same against the fake GPU libraries in fakes/.
EOF

GLIBC_NEED=$(for f in "$TMP"/libexec/* "$TMP"/lib/* "$TMP"/fakes/*; do
	objdump -T "$f" 2>/dev/null
done | grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -1)
{
	echo "built $(date -u +%Y-%m-%dT%H:%M:%SZ) from" \
	    "$(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown)"
	echo "build glibc $(ldd --version | head -1 | awk '{print $NF}')"
	echo "needs glibc $GLIBC_NEED"
	(cd "$TMP" && find . -type f -printf '%s %p\n' | sort -k2)
} >"$TMP/MANIFEST"

SIZE=$(du -sb "$TMP" | awk '{print $1}')
if [ "$SIZE" -ge "$LIMIT" ]; then
	echo "device-bundle: $SIZE bytes, over the 60 MiB limit" >&2
	exit 1
fi
rm -rf "$OUT"
mv "$TMP" "$OUT"
echo "device-bundle: $OUT, $((SIZE / 1024 / 1024)) MiB," \
    "$(ls "$OUT/lib" | wc -l) libraries, needs glibc $GLIBC_NEED"
