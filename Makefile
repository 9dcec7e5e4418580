# Makefile -- the one entry point for building, testing and packaging llmux.
#
#   make            build every program into build/bin/
#   make check      build, check the layering of supervisord/ (make layering),
#                   then run unit, fuzz-regression and integration tests
#   make asan       the same tests under AddressSanitizer + UBSan (build/asan/)
#   make fuzz       build the libFuzzer targets with clang (build/fuzz/)
#   make demo       start a demo stack with fake models (see README.md)
#   make bench      run the benchmarks and write docs/benchmarks.md
#   make install, deb, rpm, package-check: packaging/package.mk
#
# Sources are found by directory, so a new .c file needs no edit here:
# common/ and proto/ form libllmux.a; each program directory (with the
# folders inside it, as supervisord/ has: one per level) is one binary;
# tests/unit/test_*.c are one Check binary each; tests/fuzz/fuzz_*.c are
# fuzz targets (also built with a plain driver to replay their corpus).

BUILD     ?= build
CC        ?= cc
OPT       ?= -O2
SAN       ?=
# The pkg-config packages the build uses, as a shell assignment (pkgs=...)
# run once pkg-config is installed: msgpack-c 6 renamed its package (and
# its library, -lmsgpack-c) from msgpack to msgpack-c, its headers kept
# their names; the new name is used where it exists, else the old.
PKGS_SH    = pkgs="libevent libevent_pthreads evhtp \
             $$(pkg-config --exists msgpack-c && echo msgpack-c || echo msgpack) \
             yajl yaml-0.1 libsystemd libcap-ng libcurl libcrypto"
WARN       = -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
             -Wno-unused-parameter -Wformat=2 -Wno-format-nonliteral
CFLAGS    ?= $(OPT) -g
ALL_CFLAGS = -std=gnu11 -D_GNU_SOURCE $(WARN) $(CFLAGS) $(SAN) -I. -Icommon -Iproto \
             -fno-strict-aliasing -MMD -MP $(PKG_CFLAGS)
ALL_LDFLAGS = $(LDFLAGS) $(SAN)
LIBS       = $(PKG_LIBS) -lpthread -ldl -lm

# Quiet by default; `make V=1` shows every command.
ifeq ($(V),1)
Q =
say = @true
else
Q = @
say = @printf '  %-6s %s\n'
endif

all:

# Dependencies are checked (and installed when missing) before anything is
# compiled: $(BUILD)/deps.mk is remade first, and make restarts with it.
-include $(BUILD)/deps.mk
$(BUILD)/deps.mk: tools/install-deps.sh
	@mkdir -p $(BUILD)
	@tools/install-deps.sh
	@$(PKGS_SH); pkg-config --print-errors --exists $$pkgs check && \
	{ echo "PKG_CFLAGS = $$(pkg-config --cflags $$pkgs)"; \
	   echo "PKG_LIBS = $$(pkg-config --libs $$pkgs)"; \
	   echo "CHECK_CFLAGS = $$(pkg-config --cflags check)"; \
	   echo "CHECK_LIBS = $$(pkg-config --libs check)"; } > $@.tmp && mv $@.tmp $@

LIB_SRC  = $(wildcard common/*.c proto/*.c)
LIB_OBJ  = $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
LIB      = $(BUILD)/lib/libllmux.a

# Program directories: the file holding main() is <dir>/main.c; everything
# else in the directory and in its folders (<dir>/*/*.c) also goes into a
# library so tests and llmux-sim can link it. Objects keep their relative
# paths under $(BUILD)/obj.
PROGS    = supervisord:llmux-supervisord proxyd:llmux-proxyd ctl:llmuxctl \
           tools/fakevllm:llmux-fakevllm tools/sim:llmux-sim
prog_dir  = $(word 1,$(subst :, ,$(1)))
prog_name = $(word 2,$(subst :, ,$(1)))
BINS     = $(foreach p,$(PROGS),$(BUILD)/bin/$(call prog_name,$(p)))

define prog_rules
$(1)_SRC := $$(filter-out $(1)/main.c,$$(wildcard $(1)/*.c $(1)/*/*.c))
$(1)_OBJ := $$($(1)_SRC:%.c=$$(BUILD)/obj/%.o)
$(1)_LIB := $$(BUILD)/lib/lib$$(subst /,-,$(1)).a
$$($(1)_LIB): $$($(1)_OBJ) $$(BUILD)/obj/empty.o
	@mkdir -p $$(dir $$@)
	@rm -f $$@
	$$(Q)$$(AR) rcs $$@ $$^
$$(BUILD)/bin/$(2): $$(BUILD)/obj/$(1)/main.o $$($(1)_LIB) $$(LIB) $$(SIM_DEPS_$(2))
	@mkdir -p $$(dir $$@)
	$$(say) LINK $$@
	$$(Q)$$(CC) $$(ALL_LDFLAGS) -o $$@ $$(BUILD)/obj/$(1)/main.o $$($(1)_LIB) $$(SIM_LINK_$(2)) $$(LIB) $$(LIBS)
endef

# llmux-sim runs the supervisor's own switcher and policy code.
SIM_DEPS_llmux-sim = $(BUILD)/lib/libsupervisord.a
SIM_LINK_llmux-sim = $(BUILD)/lib/libsupervisord.a

$(foreach p,$(PROGS),$(eval $(call prog_rules,$(call prog_dir,$(p)),$(call prog_name,$(p)))))

PROG_LIBS = $(foreach p,$(PROGS),$(BUILD)/lib/lib$(subst /,-,$(call prog_dir,$(p))).a)

.PHONY: all check layering unit integration fuzz-regress asan fuzz demo bench bench-proxy \
        bench-policies bench-fakevllm bench-status bench-switch bench-store soak clean install deb rpm \
        distclean clang-check print-pkgs
all: $(BINS)

# The pkg-config packages the build uses (packaging/rpm/llmux.spec asks).
print-pkgs:
	@$(PKGS_SH); echo $$pkgs

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(say) CC $<
	$(Q)$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD)/obj/empty.o:
	@mkdir -p $(dir $@)
	$(Q)echo 'extern int llmux_empty_archive; int llmux_empty_archive;' | $(CC) -x c -c -o $@ -

$(LIB): $(LIB_OBJ)
	@mkdir -p $(dir $@)
	@rm -f $@
	$(Q)$(AR) rcs $@ $^

# ---- tests ---------------------------------------------------------------
UNIT_SRC  = $(wildcard tests/unit/test_*.c)
UNIT_BINS = $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
FAKE_SRC  = $(wildcard tests/fakes/*.c)

$(BUILD)/obj/tests/unit/%.o: tests/unit/%.c
	@mkdir -p $(dir $@)
	$(say) CC $<
	$(Q)$(CC) $(ALL_CFLAGS) $(CHECK_CFLAGS) -c -o $@ $<

$(BUILD)/tests/test_%: $(BUILD)/obj/tests/unit/test_%.o $(PROG_LIBS) $(LIB)
	@mkdir -p $(dir $@)
	$(say) LINK $@
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $< $(PROG_LIBS) $(LIB) $(CHECK_LIBS) $(LIBS)

# Fakes built by the test suite (fake libcuda, libnvidia-ml, criu, ...):
# tests/fakes/lib*.c become shared objects, other .c files programs.
FAKE_SO   = $(patsubst tests/fakes/%.c,$(BUILD)/fakes/%.so,$(filter tests/fakes/lib%,$(FAKE_SRC)))
FAKE_BIN  = $(patsubst tests/fakes/%.c,$(BUILD)/fakes/%,$(filter-out tests/fakes/lib%,$(FAKE_SRC)))
$(BUILD)/fakes/lib%.so: tests/fakes/lib%.c
	@mkdir -p $(dir $@)
	$(say) LINK $@
	$(Q)$(CC) $(ALL_CFLAGS) -fPIC -shared -o $@ $< -lpthread
$(BUILD)/fakes/%: tests/fakes/%.c $(LIB)
	@mkdir -p $(dir $@)
	$(say) LINK $@
	$(Q)$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $< $(LIB) $(LIBS)

# Fuzz targets: with clang + libFuzzer for `make fuzz`, and with a plain
# replay driver (any compiler) so `make check` runs every saved input.
FUZZ_SRC  = $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_NAMES = $(FUZZ_SRC:tests/fuzz/%.c=%)
REPLAY_BINS = $(FUZZ_NAMES:%=$(BUILD)/tests/replay_%)
$(BUILD)/tests/replay_%: tests/fuzz/%.c tests/fuzz/replay.c $(PROG_LIBS) $(LIB)
	@mkdir -p $(dir $@)
	$(say) LINK $@
	$(Q)$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $< tests/fuzz/replay.c $(PROG_LIBS) $(LIB) $(LIBS)

TESTS_BUILT = $(BINS) $(UNIT_BINS) $(REPLAY_BINS) $(FAKE_SO) $(FAKE_BIN)

# `make check` also compiles everything with clang (warnings are errors on
# both compilers), unless CHECK_CLANG=0 or this is already a clang build.
CHECK_CLANG ?= $(if $(filter clang%,$(notdir $(CC))),0,1)
check: $(TESTS_BUILT)
	@if [ "$(CHECK_CLANG)" = 1 ]; then $(MAKE) --no-print-directory -s clang-check; fi
	@$(MAKE) --no-print-directory -s layering
	@tests/run-tests $(BUILD)

# From the built objects: supervisord/'s folders call only the levels below
# them (docs/architecture.md), and no loop crosses a folder; proxyd/'s loops
# between files are reported.
layering: $(BINS)
	@tools/layering-check --doc docs/architecture.md $(BUILD) supervisord
	@tools/layering-check --report $(BUILD) proxyd

unit: $(UNIT_BINS)
	@tests/run-tests --only unit $(BUILD)

integration: $(BINS) $(FAKE_SO) $(FAKE_BIN)
	@tests/run-tests --only integration $(BUILD) $(T)

fuzz-regress: $(REPLAY_BINS)
	@tests/run-tests --only fuzz $(BUILD)

asan:
	$(MAKE) BUILD=build/asan OPT=-O1 \
	    SAN="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" check

clang-check:
	@$(MAKE) --no-print-directory BUILD=build/clang CC=clang SAN= OPT=-O2 all >/dev/null

# Fuzz targets land in build/fuzz/fuzz_<name>; run one with, for example,
#   build/fuzz/fuzz_frame -max_total_time=600 CORPUS_DIR tests/fuzz/corpus/fuzz_frame
fuzz:
	$(MAKE) BUILD=build/fuzz CC=clang OPT=-O1 \
	    SAN="-fsanitize=address,undefined,fuzzer-no-link -fno-omit-frame-pointer" fuzz-targets
fuzz-targets: $(FUZZ_NAMES:%=$(BUILD)/%)
$(BUILD)/fuzz_%: tests/fuzz/fuzz_%.c $(PROG_LIBS) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -fsanitize=fuzzer $(ALL_LDFLAGS) -o $@ $< $(PROG_LIBS) $(LIB) $(LIBS)

demo: all
	@tools/demo.sh $(BUILD)

# Every switch policy on every trace of tests/traces/ through llmux-sim.
bench-policies: $(BUILD)/bin/llmux-sim
	@tests/bench/bench-policies.py $(BUILD) $(BENCH_ARGS)

# Every benchmark below, then docs/benchmarks.md rewritten with the figures
# (BENCH_ARGS=--quick for short runs, --only proxy,switch for some).
bench: $(BINS) $(BUILD)/bench/bench_status $(BUILD)/bench/bench_sha256 $(FAKE_SO) $(FAKE_BIN)
	@tests/bench/bench-all.py $(BUILD) $(BENCH_ARGS)

# llmux-proxyd against llmux-fakevllm directly and nginx (FAKEVLLM=path to
# use another llmux-fakevllm; BENCH_ARGS=--quick for a short run).
bench-proxy: $(BINS)
	@python3 tests/bench/bench-proxy.py --build $(BUILD) $(BENCH_ARGS)

# llmux-fakevllm's own latency and throughput (needs wrk: install-deps.sh --all).
bench-fakevllm: $(BUILD)/bin/llmux-fakevllm
	@tests/bench/bench-fakevllm.sh $(BUILD)

# What llmux adds to a switch on top of the model's own sleep and wake
# (a real supervisor, proxy and two llmux-fakevllm models; BENCH_ARGS=
# --switches N).
bench-switch: $(BINS)
	@tests/bench/bench-switch.py $(BUILD) $(BENCH_ARGS)

# A checkpoint's images to the S3 stub and back (BENCH_ARGS=--mib N), and
# the SHA-256 against the portable C it replaced (bench_sha256).
bench-store: $(BINS) $(BUILD)/bench/bench_sha256 $(FAKE_SO) $(FAKE_BIN)
	@tests/bench/bench-store.py $(BUILD) $(BENCH_ARGS)

# The status round trip over the supervisor's socket (p50/p99 of 10 000).
bench-status: $(BINS) $(BUILD)/bench/bench_status
	@tests/bench/bench-status.py $(BUILD)
$(BUILD)/bench/%: tests/bench/%.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $< $(LIB) $(LIBS)
$(BUILD)/bench/bench_sha256: tests/bench/bench_sha256.c $(BUILD)/lib/libsupervisord.a $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $< $(BUILD)/lib/libsupervisord.a $(LIB) $(LIBS)

soak: $(TESTS_BUILT)
	@LLMUX_SOAK=1 tests/run-tests --only integration $(BUILD)

# ---- the device bundle (tests/gpu/device-run.sh, docs/gpu.md) -----------
# One folder, $(BUILD)/device-bundle, that runs the whole stack on a machine
# with a GPU and nothing but glibc installed: the programs, the GPU tools
# built here, the shared libraries beyond glibc, the fakes for --dry and the
# scripts (tools/device-bundle.sh). `make check` builds it and tests it.
GPU_TOOLS = $(BUILD)/gpu/gpu_check $(BUILD)/gpu/gpu_copy
all: $(GPU_TOOLS)
$(BUILD)/gpu/gpu_check: tests/gpu/gpu_check.c $(BUILD)/lib/libsupervisord.a $(LIB)
	@mkdir -p $(dir $@)
	$(say) LINK $@
	$(Q)$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $< $(BUILD)/lib/libsupervisord.a $(LIB) $(LIBS)
$(BUILD)/gpu/gpu_copy: tests/gpu/gpu_copy.c $(BUILD)/lib/libtools-fakevllm.a $(LIB)
	@mkdir -p $(dir $@)
	$(say) LINK $@
	$(Q)$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $< $(BUILD)/lib/libtools-fakevllm.a $(LIB) $(LIBS)
# The fake libcuda.so is two files: the checkpoint API and, for the GPU
# tools and llmux-fakevllm --fake-gpu cuda, devices and memory.
$(BUILD)/fakes/libcuda.so: tests/fakes/libcuda.c tests/fakes/libcuda/memory.c \
    tests/fakes/libcuda/fakecuda.h tests/fakes/fakegpu.h
	@mkdir -p $(dir $@)
	$(say) LINK $@
	$(Q)$(CC) $(filter-out -MMD -MP,$(ALL_CFLAGS)) -fPIC -shared -o $@ \
	    tests/fakes/libcuda.c tests/fakes/libcuda/memory.c -lpthread
.PHONY: device-bundle
device-bundle: $(BINS) $(GPU_TOOLS) $(FAKE_SO)
	@tools/device-bundle.sh $(BUILD) $(BUILD)/device-bundle
check integration: device-bundle

clean:
	rm -rf build

.SECONDARY:

include packaging/package.mk

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
