# Parley build. `make run` starts the local stack; `make test` runs every test; see README.md.
CC      ?= gcc
WERROR  ?= 0
WARN    := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wformat=2
ifeq ($(WERROR),1)
WARN    += -Werror
endif
CFLAGS  ?= -O2 -g
CFLAGS  += -std=c11 -D_GNU_SOURCE -pthread $(WARN) -Icommon
PKGS    := libpq hiredis libcjson libcurl openssl uuid
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CFLAGS  += $(PKG_CFLAGS)
LDLIBS  := -lcivetweb -lnng $(PKG_LIBS) -pthread -lm

# Libraries only one service needs are linked into that service (and its unit tests) alone.
MEDIA_PKGS := speexdsp pocketsphinx sphinxbase espeak-ng
CFLAGS  += $(shell pkg-config --cflags $(MEDIA_PKGS) 2>/dev/null)
SVC_LIBS_media-pipeline := $(shell pkg-config --libs $(MEDIA_PKGS) 2>/dev/null) \
    -lflite_cmu_us_kal16 -lflite_cmu_us_kal -lflite_cmu_us_slt -lflite_cmu_us_awb \
    -lflite_cmu_us_rms -lflite_usenglish -lflite_cmulex -lflite -lwebrtc_audio_processing

B := build
COMMON_SRC := $(wildcard common/*.c)
COMMON_OBJ := $(COMMON_SRC:%.c=$(B)/obj/%.o)
LIB        := $(B)/libparley.a

# Every folder under services/ with a main.c is one binary build/bin/<folder>, from all its .c
# files. Unit tests of a service's modules live in tests/unit/<service>/test_*.c and link that
# service's objects except main.o.
SERVICES := $(notdir $(patsubst %/main.c,%,$(wildcard services/*/main.c)))
SERVICE_BINS := $(SERVICES:%=$(B)/bin/%)
ADMIN_SRC := $(wildcard tools/admin/*.c)
EVENTS_SRC := $(wildcard tools/events/*.c)
# parley-transcribe reuses the media-pipeline's transcriber modules.
TRANSCRIBE_OBJ := $(B)/obj/tools/transcribe/main.o \
    $(patsubst %.c,$(B)/obj/%.o,$(addprefix services/media-pipeline/,stt_local.c resample.c wav.c))
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(B)/tests/%)
SVC_UNIT_SRC := $(wildcard tests/unit/*/test_*.c)
SVC_UNIT_BIN := $(foreach t,$(SVC_UNIT_SRC),$(B)/tests/$(notdir $(patsubst %/,%,$(dir $(t))))-$(notdir $(basename $(t))))
BENCH_SRC := $(wildcard tests/bench/*/*.c)
BENCH_BIN := $(BENCH_SRC:tests/bench/%.c=$(B)/bench/%)

.PHONY: all install run stop test bench bench-api bench-dial bench-webhooks bench-pipeline bench-inbound format format-check clean

all: $(SERVICE_BINS) $(B)/bin/parley-admin $(B)/bin/parley-events $(B)/bin/parley-transcribe $(UNIT_BIN) $(SVC_UNIT_BIN) \
     $(BENCH_BIN)

$(B)/obj/%.o: %.c $(wildcard common/*.h) $(wildcard services/*/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -I$(dir $<) -c $< -o $@

$(LIB): $(COMMON_OBJ)
	@mkdir -p $(dir $@)
	ar rcs $@ $^

.SECONDEXPANSION:
$(SERVICE_BINS): $(B)/bin/%: $$(patsubst %.c,$(B)/obj/%.o,$$(wildcard services/%/*.c)) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS) $(SVC_LIBS_$*)

$(B)/bin/parley-admin: $(ADMIN_SRC:%.c=$(B)/obj/%.o) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

$(B)/bin/parley-events: $(EVENTS_SRC:%.c=$(B)/obj/%.o) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

$(B)/bin/parley-transcribe: $(TRANSCRIBE_OBJ) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS) $(SVC_LIBS_media-pipeline)

$(B)/tests/%: tests/unit/%.c tests/unit/check.h tests/unit/check_db.h $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests/unit -o $@ $< $(LIB) $(LDLIBS)

# build/tests/<service>-test_x from tests/unit/<service>/test_x.c + the service's modules.
define svc_unit_rule
$(B)/tests/$(1)-$(2): tests/unit/$(1)/$(2).c tests/unit/check.h tests/unit/check_db.h \
    $(patsubst %.c,$(B)/obj/%.o,$(filter-out services/$(1)/main.c,$(wildcard services/$(1)/*.c))) $(LIB)
	@mkdir -p $$(dir $$@)
	$$(CC) $$(CFLAGS) -Itests/unit -Iservices/$(1) -o $$@ $$(filter-out %.h,$$^) $(LDLIBS) \
	    $(SVC_LIBS_$(1))
endef
$(foreach t,$(SVC_UNIT_SRC),$(eval $(call svc_unit_rule,$(notdir $(patsubst %/,%,$(dir $(t)))),$(notdir $(basename $(t))))))

$(B)/bench/%: tests/bench/%.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(LIB) $(LDLIBS)

install:
	@bash deploy/local/install.sh

run: install
	@$(MAKE) --no-print-directory all
	@bash deploy/local/run.sh

stop:
	@bash deploy/local/stop.sh

# Every test, each suite on its own fresh Postgres and Redis; ends with "N passed, N failed".
test: install
	@$(MAKE) --no-print-directory WERROR=1 all
	@python3 tests/run.py

bench: bench-api bench-dial bench-webhooks bench-pipeline bench-inbound

bench-api: install
	@$(MAKE) --no-print-directory all
	@bash tests/bench/api/run.sh

bench-dial: install
	@$(MAKE) --no-print-directory all
	@bash tests/bench/dial/run.sh

bench-webhooks: install
	@$(MAKE) --no-print-directory all
	@bash tests/bench/webhooks/run.sh

bench-pipeline: install
	@$(MAKE) --no-print-directory all
	@bash tests/bench/pipeline/run.sh

bench-inbound: install
	@$(MAKE) --no-print-directory all
	@bash tests/bench/inbound/run.sh

FORMAT_FILES = $(shell git ls-files '*.c' '*.h' 2>/dev/null)
format:
	clang-format -i $(FORMAT_FILES)

format-check:
	@clang-format --dry-run --Werror $(FORMAT_FILES)

clean:
	rm -rf $(B)
