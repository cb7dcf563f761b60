/*
 * Native cycle accounting for simcore: unicorn block and memory-read hooks in C.
 *
 * The Python side (simcore/cycles/native.py) owns an `Accounting` object, hands it
 * the per-halfword prefix arrays made by simcore/cycles/classify.py, and registers
 * `simcore_block_hook` (UC_HOOK_BLOCK) and, where flash data reads are modeled,
 * `simcore_tlb_fill_hook` (UC_HOOK_TLB_FILL, virtual TLB) with MMIO aliases served by
 * `simcore_flash_data_read` and `simcore_fast_io_read/write`, through unicorn's
 * uc_hook_add / uc_mmio_map with the address of the object's state as user data. No
 * Python runs per block or per access.
 *
 * Per block [start, end): cycles += P[end] - P[start], instructions += C[end] -
 * C[start], counts[start]++; a block that does not start where the previous one
 * ended follows a taken branch and costs refill_cycles more. A cost difference of
 * UNKNOWN_COST or more (modulo 2**64) marks a forbidden halfword (data, no timing
 * entry, or a start inside a 32-bit instruction): the hook records the block and
 * stops the emulator, Python then raises with the disassembly.
 *
 * This file does not link against libunicorn: uc_emu_stop is passed in as a
 * function pointer obtained through ctypes from the library unicorn's binding loaded.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_RANGES 32
#define UNKNOWN_COST (1ULL << 40)
#define NO_BLOCK UINT64_MAX
/* Loaded ranges for resident pages (acct_state.loaded_lo); more ranges: every line counts. */
#define MAX_LOADED 32

enum stop_reason {
    STOP_NONE = 0,
    STOP_BUDGET = 1,
    STOP_OUTSIDE_CODE = 2,
    STOP_UNKNOWN_INSTRUCTION = 3,
    STOP_DEADLINE = 4,
    STOP_ORDER_LOST = 5,
    STOP_TIMEOUT = 6,
};

/* Cycles between two looks at the clock for the wall-clock timeout (set_timeout): about
 * 0.3 ms of emulation at full speed. */
#define WALL_CHECK_CYCLES 100000

typedef int (*emu_stop_fn)(void *uc);
typedef int (*uc_reg_write_fn)(void *uc, int regid, const void *value);
typedef int (*uc_mem_fn)(void *uc, uint64_t address, void *bytes, uint64_t size);
typedef int (*uc_ctl_fn)(void *uc, int control, ...);

/* unicorn.h values (2.1.4): uc_mem_type, uc_prot, UC_ARM_REG_EPSR. */
enum { UC_MEM_READ_ = 16, UC_MEM_WRITE_ = 17, UC_MEM_FETCH_ = 18 };
enum { UC_PROT_READ_ = 1, UC_PROT_WRITE_ = 2, UC_PROT_EXEC_ = 4, UC_PROT_ALL_ = 7 };
#define UC_ARM_REG_EPSR_ 121  /* writes EPSR alone (IT, T): EAPSR would write the flags too */
#define EPSR_T (1u << 24)
/* uc_ctl(UC_CTL_TLB_FLUSH) with no arguments: (UC_CTL_IO_WRITE << 30) | (0 << 26) | 11. */
#define UC_CTL_TLB_FLUSH_WRITE_ ((1 << 30) | 11)

typedef struct {
    uint64_t paddr;
    int32_t perms;
} uc_tlb_entry_;

/* A separate data cache (the Cortex-M7 L1 D-cache): set-associative, LRU. */
typedef struct {
    uint32_t sets, ways, line_shift, sets_shift; /* ways 0 = none: data shares the cache */
    uint64_t miss_cycles;
    uint32_t *tags;
    uint64_t *stamps;
    uint64_t clock;
} data_cache;

typedef struct {
    uint64_t start;          /* address of halfword 0 */
    uint64_t end;            /* start + 2 * nhalf */
    const uint64_t *prefix;  /* (nhalf + 1) x {cost, count} */
    uint64_t *counts;        /* nhalf (+1 spare): blocks that started at each halfword */
    uint64_t *ends;          /* nhalf + 1: blocks that ended just before each halfword */
    uint64_t *extra;         /* nhalf + 1: dynamic cycles charged at each halfword (taken-branch
                              * refills at a block's last halfword, cache misses and fast-IO
                              * savings, mod 2**64, at its first), so that the profile adds
                              * up to the total; NULL = not kept */
    uint32_t *rec_of;        /* nhalf + 1: the block record (index into acct_state.recs, 0 =
                              * none) of the block starting at each halfword */
    /* Lines of the cached range this range's code spans: per line [reg_first, reg_first +
     * reg_nlines), the head of its list of registered block records (0 = none; see
     * acct_state.reg_next); NULL until the first registration. */
    uint32_t *reg_head;
    uint64_t reg_first, reg_nlines;
} code_range;

/* One translated block [start, end) as the block hook met it, with its static cost looked
 * up once. The hot path then reads one record instead of the prefix arrays, counts into
 * it and folds the counts into code_range.counts/ends/extra when Python asks (flush).
 *
 * Lazy fetch stamps (shared caches of at most MAPPED_WAYS ways): once a block's fetch
 * found every line of it in the cache (`valid`), and no line of it was evicted since,
 * running it again hits on every line; it then only records the access time in `stamp`
 * instead of stamping each line. The LRU age of a line is the latest of its own stamp and
 * the stamps of the blocks registered on it (lazy_stamp), which is all that a victim
 * choice reads; the order of accesses is the same as with per-line stamps (a block's
 * lines lie in distinct sets, nlines <= sets). */
typedef struct {
    uint64_t end;            /* key with the start (rec_of); NO_BLOCK for the sentinel */
    uint64_t dc, di;         /* static cycles and instructions of the block */
    uint64_t count;          /* executions not yet folded into counts/ends */
    uint64_t taken;          /* taken branches after it not yet folded into extra */
    uint64_t stamp;          /* cache_clock of its last lazy fetch (0 = none) */
    uint32_t nlines;         /* lines of the cached range it spans */
    uint8_t valid;           /* every line of it is in the cache (see above) */
    uint8_t registered;      /* on the line lists of its range (reg_head) */
    uint16_t range;          /* index into acct_state.ranges */
    uint32_t alt;            /* another record of the same start (0 = none) */
    uint64_t start;
} block_rec;

typedef struct {
    /* Hot: read or written on every block. */
    uint64_t cycles;
    uint64_t instructions;
    uint64_t cur_start, cur_end; /* the block executing now; cur_end is NO_BLOCK at first */
    uint64_t budget_limit;       /* stop once instructions reach this; UINT64_MAX = none */
    uint64_t deadline;           /* the hook's one test: the earlier of event_deadline and
                                  * wall_check_at */
    uint64_t refill_cycles;
    uint64_t cache_lo, cache_span; /* cached range [lo, lo + span); span 0 = no cache */
    /* Fast path: the same block again with no cache access in between hits on every
     * line and leaves the LRU order as it was (tight loops). */
    uint64_t lf_start, lf_end, lf_lines, lf_touch, cache_touch;
    uint64_t fetch_hits;
    const code_range *last;      /* range of the previous block */
    uint64_t *tail_extra;        /* extra[] slot of the last halfword of the previous block */
    uint64_t *head_extra;        /* extra[] slot of the first halfword of the current block */
    block_rec *recs;             /* block records; recs[0] is a sentinel (never matches) */
    uint32_t prev;               /* record of the previous block (0 = none: plain path) */
    /* Warm and cold. */
    uint64_t taken_branches;
    uint64_t budget;             /* as set (0 = none), for the snapshot */
    uint64_t fault_start, fault_end;
    int32_t stop_reason;
    int32_t nranges;
    emu_stop_fn emu_stop;
    uint32_t cache_sets, cache_ways, line_shift, sets_shift;
    uint64_t miss_cycles;
    uint32_t *cache_tags;        /* sets x ways; UINT32_MAX = invalid */
    uint64_t *cache_stamps;      /* sets x ways: LRU by access stamp */
    /* Caches of more than MAPPED_WAYS ways (the STM32F4 ART accelerator: 64, fully
     * associative): per line of the cached range, its way + 1 (0 = not cached), so a hit
     * costs one lookup instead of a scan of every way; NULL otherwise. */
    uint8_t *way_of;
    uint64_t cache_clock;
    uint64_t fetch_misses, data_hits, data_misses;
    uint64_t cache_cycles;       /* miss cycles charged (already in `cycles`) */
    uint64_t fast_io_saving, fast_io_accesses;
    /* Data accesses through the virtual TLB (simcore_tlb_fill_hook): loads from the cached
     * range go to an MMIO alias at flash_alias, accesses to the single-cycle IO range
     * [io_lo, io_lo + io_span) to one at io_alias; span 0 = none. */
    uint64_t flash_alias;
    uint64_t io_lo, io_span, io_alias;
    uc_reg_write_fn reg_write;
    uc_mem_fn mem_read, mem_write;
    const uint8_t *flash_copy;    /* the cached range's first copy_len bytes (read-only
                                   * memory; the rest is read from unicorn), or NULL */
    uint64_t copy_len;
    uint64_t data_line, data_touch; /* line of the last data load, cache_touch after it */
    data_cache dcache;
    uint64_t tlb_fills;
    /* Resident pages (configure_resident_pages; resident NULL = off): data reads of a
     * page of the cached range whose every line is in the cache go to plain memory
     * (unicorn's fast path) instead of the MMIO alias. Such reads can only hit and a
     * hit adds no cycle, so cycles and misses stay exact while the page stays whole;
     * the data-hit count then misses them. The LRU order of a set holding a line of a
     * resident page is no longer known (its reads are not seen), so a miss that must
     * evict from such a set marks the run `lru_unknown` (run it again with the pages
     * off); a miss into a free way needs no order and stays exact. */
    uint16_t *resident;          /* per page: lines of it in the cache that count (below) */
    uint16_t *needed;            /* per page: lines that count; whole when all are cached */
    /* The lines that count: those holding a byte of the loaded image, [lo, hi) in line
     * numbers (nloaded 0: every line). A line the image does not fill is read by no
     * correct program (simcore reads such flash as 0, not what the chip holds), so it
     * does not keep its page from going resident. */
    uint64_t loaded_lo[MAX_LOADED], loaded_hi[MAX_LOADED];
    int32_t nloaded;
    uint8_t *fast_page;          /* per page: data reads go to plain memory */
    uint32_t page_shift, lines_per_page;
    uint64_t fast_pages;         /* pages switched so far */
    int32_t tlb_flush_pending;   /* a page was switched: flush the TLB at the next callback */
    int32_t lru_unknown;
    int32_t order_stop_pending;  /* lru_unknown was just set: stop (STOP_ORDER_LOST) */
    uc_ctl_fn ctl;
    uint64_t sink;               /* where extra cycles go before the first block */
    uint64_t charged_cycles;     /* cycles added by charge(): exception entry/return, sleep */
    uint64_t event_deadline;     /* stop once cycles reach this (the next timer or SysTick
                                  * event, or 0: re-examine the interrupts at the next
                                  * block); UINT64_MAX = none */
    /* The wall-clock timeout (set_timeout): CLOCK_MONOTONIC nanoseconds (0 = none), looked
     * at once cycles reach wall_check_at. Unicorn's own timeout runs a thread that wakes
     * every few microseconds (tens of thousands of context switches per second). */
    uint64_t wall_deadline_ns, wall_check_at;
    uint32_t nrecs, cap_recs;    /* records in use (with the sentinel) and allocated */
    uint32_t max_recs;           /* more blocks than this take the plain path */
    int32_t use_records;         /* 0: every block takes the plain path (the reference) */
    int32_t lazy_fetch;          /* lazy fetch stamps (see block_rec) */
    int32_t lazy_allowed;        /* set_block_records' choice (lazy_fetch needs a cache too) */
    uint32_t *reg_next, *reg_rec; /* line-list nodes: next node, record (node 0 unused) */
    uint32_t nreg, cap_reg;
    code_range ranges[MAX_RANGES];
} acct_state;

#define UNLIKELY(x) __builtin_expect(!!(x), 0)
/* Above this many ways the shared cache keeps acct_state.way_of (see there). */
#define MAPPED_WAYS 8


/* Look tag up in one set of `ways` lines, LRU by stamp; return 1 on hit. */
static inline int lru_access(uint32_t *tags, uint64_t *stamps, uint32_t ways, uint32_t tag,
                             uint64_t stamp) {
    uint32_t victim = 0;
    for (uint32_t w = 0; w < ways; w++) {
        if (tags[w] == tag) {
            stamps[w] = stamp;
            return 1;
        }
        if (stamps[w] < stamps[victim]) victim = w;
    }
    tags[victim] = tag;
    stamps[victim] = stamp;
    return 0;
}

/* The page (index from the cached range's start) of a line of the cached range. */
static inline uint64_t page_of_line(const acct_state *s, uint64_t line) {
    return ((line << s->line_shift) - s->cache_lo) >> s->page_shift;
}

/* Whether a line counts towards its page's residency (see acct_state.loaded_lo). */
static int line_counts(const acct_state *s, uint64_t line) {
    if (!s->nloaded) return 1;
    for (int32_t i = 0; i < s->nloaded; i++)
        if (line >= s->loaded_lo[i] && line < s->loaded_hi[i]) return 1;
    return 0;
}

/* A miss of `line` with resident-page bookkeeping (see acct_state.resident): `victim`
 * (the first way of least stamp in `set`) is replaced. */
__attribute__((noinline)) static void cache_fill_pages(acct_state *s, uint64_t line,
                                                       uint32_t set, uint32_t victim) {
    size_t at = (size_t)set * s->cache_ways;
    uint32_t *tags = s->cache_tags + at;
    uint64_t *stamps = s->cache_stamps + at;
    if (tags[victim] != UINT32_MAX) {
        /* An eviction: the victim is only certain if no way holds a resident page's line. */
        for (uint32_t w = 0; w < s->cache_ways && !s->lru_unknown; w++) {
            uint64_t held = ((uint64_t)tags[w] << s->sets_shift) | set;
            if (s->fast_page[page_of_line(s, held)]) s->lru_unknown = s->order_stop_pending = 1;
        }
        uint64_t old = ((uint64_t)tags[victim] << s->sets_shift) | set;
        if (line_counts(s, old)) s->resident[page_of_line(s, old)]--;
    }
    tags[victim] = (uint32_t)(line >> s->sets_shift);
    stamps[victim] = ++s->cache_clock;
    if (!line_counts(s, line)) return;
    uint64_t page = page_of_line(s, line);
    if (++s->resident[page] == s->needed[page] && !s->fast_page[page] && !s->lru_unknown) {
        s->fast_page[page] = 1;
        s->fast_pages++;
        s->tlb_flush_pending = 1;
    }
}

/* cache_line through way_of: the same hits, victims (the first way of least stamp) and
 * stamps as lru_access, without scanning the ways on a hit. */
static int cache_line_mapped(acct_state *s, uint64_t line) {
    uint32_t set = (uint32_t)(line & (s->cache_sets - 1));
    size_t at = (size_t)set * s->cache_ways;
    uint64_t index = line - (s->cache_lo >> s->line_shift);
    uint32_t way = s->way_of[index];
    if (way) {
        s->cache_stamps[at + way - 1] = ++s->cache_clock;
        return 1;
    }
    uint32_t *tags = s->cache_tags + at;
    uint64_t *stamps = s->cache_stamps + at;
    uint32_t victim = 0;
    for (uint32_t w = 1; w < s->cache_ways; w++)
        if (stamps[w] < stamps[victim]) victim = w;
    if (tags[victim] != UINT32_MAX) {
        uint64_t old = ((uint64_t)tags[victim] << s->sets_shift) | set;
        s->way_of[old - (s->cache_lo >> s->line_shift)] = 0;
    }
    tags[victim] = (uint32_t)(line >> s->sets_shift);
    stamps[victim] = ++s->cache_clock;
    s->way_of[index] = (uint8_t)(victim + 1);
    return 0;
}

/* The LRU age of the line in way w of set `set`: its own stamp, or the last lazy fetch of
 * a block registered on it if later (see block_rec). */
static uint64_t lazy_stamp(const acct_state *s, uint32_t set, uint32_t w) {
    size_t at = (size_t)set * s->cache_ways + w;
    uint64_t stamp = s->cache_stamps[at];
    if (s->cache_tags[at] == UINT32_MAX) return stamp;
    uint64_t line = ((uint64_t)s->cache_tags[at] << s->sets_shift) | set;
    for (int32_t i = 0; i < s->nranges; i++) {
        const code_range *r = &s->ranges[i];
        if (!r->reg_head || line - r->reg_first >= r->reg_nlines) continue;
        for (uint32_t n = r->reg_head[line - r->reg_first]; n; n = s->reg_next[n]) {
            uint64_t b = s->recs[s->reg_rec[n]].stamp;
            if (b > stamp) stamp = b;
        }
    }
    return stamp;
}

/* `line` left the cache: the blocks registered on it must fetch it again. */
static void invalidate_line(acct_state *s, uint64_t line) {
    for (int32_t i = 0; i < s->nranges; i++) {
        const code_range *r = &s->ranges[i];
        if (!r->reg_head || line - r->reg_first >= r->reg_nlines) continue;
        for (uint32_t n = r->reg_head[line - r->reg_first]; n; n = s->reg_next[n])
            s->recs[s->reg_rec[n]].valid = 0;
    }
}

/* A miss of `line` with lazy fetch stamps: the victim is the first way of least LRU age
 * (lazy_stamp), as lru_access chooses with per-line stamps. */
__attribute__((noinline)) static void cache_miss_lazy(acct_state *s, uint64_t line,
                                                      uint32_t set) {
    uint32_t victim = 0;
    uint64_t least = UINT64_MAX;
    for (uint32_t w = 0; w < s->cache_ways; w++) {
        uint64_t age = lazy_stamp(s, set, w);
        if (age < least) {
            least = age;
            victim = w;
        }
    }
    size_t at = (size_t)set * s->cache_ways;
    if (s->cache_tags[at + victim] != UINT32_MAX)
        invalidate_line(s, ((uint64_t)s->cache_tags[at + victim] << s->sets_shift) | set);
    if (s->resident) {
        cache_fill_pages(s, line, set, victim);
    } else {
        s->cache_tags[at + victim] = (uint32_t)(line >> s->sets_shift);
        s->cache_stamps[at + victim] = ++s->cache_clock;
    }
}

/* Access one cache line; return 1 on hit. The hit path is inline (instruction fetch
 * checks every line of most blocks); misses with resident pages go out of line. */
static inline int cache_line(acct_state *s, uint64_t line) {
    if (s->way_of) return cache_line_mapped(s, line);
    uint32_t set = (uint32_t)(line & (s->cache_sets - 1));
    size_t at = (size_t)set * s->cache_ways;
    uint32_t *tags = s->cache_tags + at;
    uint64_t *stamps = s->cache_stamps + at;
    uint32_t tag = (uint32_t)(line >> s->sets_shift);
    uint32_t victim = 0;
    for (uint32_t w = 0; w < s->cache_ways; w++) {
        if (tags[w] == tag) {
            stamps[w] = ++s->cache_clock;
            return 1;
        }
        if (stamps[w] < stamps[victim]) victim = w;
    }
    if (s->lazy_fetch) {
        cache_miss_lazy(s, line, set);
    } else if (s->resident) {
        cache_fill_pages(s, line, set, victim);
    } else {
        tags[victim] = tag;
        stamps[victim] = ++s->cache_clock;
    }
    return 0;
}

/* Drop the TLB once a page was switched, so its next data access refills through
 * simcore_tlb_fill_hook (QEMU's own MPU helpers flush from inside a block too). */
__attribute__((noinline, cold)) static void pending_actions(acct_state *s, void *uc) {
    if (s->tlb_flush_pending) {
        s->tlb_flush_pending = 0;
        s->ctl(uc, UC_CTL_TLB_FLUSH_WRITE_);
    }
    if (s->order_stop_pending) {
        /* The run's figures can no longer be exact: stop now rather than at the end, so
         * the engine's run with every load seen starts without finishing this one. */
        s->order_stop_pending = 0;
        if (s->stop_reason == STOP_NONE || s->stop_reason == STOP_DEADLINE)
            s->stop_reason = STOP_ORDER_LOST;
        if (s->emu_stop) s->emu_stop(uc);
    }
}

static inline void flush_if_pending(acct_state *s, void *uc) {
    if (UNLIKELY(s->tlb_flush_pending | s->order_stop_pending)) pending_actions(s, uc);
}

/* Data read of [lo, hi) through the separate data cache; return the miss cycles. */
static uint64_t dcache_range(acct_state *s, uint64_t lo, uint64_t hi) {
    data_cache *c = &s->dcache;
    uint64_t missed = 0;
    for (uint64_t line = lo >> c->line_shift; line <= (hi - 1) >> c->line_shift; line++) {
        uint32_t set = (uint32_t)(line & (c->sets - 1));
        size_t at = (size_t)set * c->ways;
        if (lru_access(c->tags + at, c->stamps + at, c->ways, (uint32_t)(line >> c->sets_shift),
                       ++c->clock)) {
            s->data_hits++;
        } else {
            s->data_misses++;
            missed += c->miss_cycles;
        }
    }
    s->cache_cycles += missed;
    return missed;
}

/* Access the lines of [lo, hi) inside the cached range; return the miss cycles (the
 * caller adds them to `cycles`). Out of line: keeps the block hook's hot path short. */
__attribute__((noinline)) static uint64_t cache_range(acct_state *s, uint64_t lo, uint64_t hi,
                                                     int data) {
    uint64_t cache_hi = s->cache_lo + s->cache_span;
    if (lo < s->cache_lo) lo = s->cache_lo;
    if (hi > cache_hi) hi = cache_hi;
    if (lo >= hi) return 0;
    uint64_t first = lo >> s->line_shift, last = (hi - 1) >> s->line_shift;
    uint64_t missed = 0;
    for (uint64_t line = first; line <= last; line++) {
        int hit = cache_line(s, line);
        if (data) {
            if (hit) s->data_hits++; else s->data_misses++;
        } else {
            if (hit) s->fetch_hits++; else s->fetch_misses++;
        }
        if (!hit) missed += s->miss_cycles;
    }
    s->cache_cycles += missed;
    return missed;
}

/* The extra[] slot of the current block's first halfword (cache misses, fast-IO savings)
 * and of its last (taken-branch refills, charge()): from its record, or kept by the plain
 * path in head_extra/tail_extra (the record path does not store them per block). */
static uint64_t *head_slot(acct_state *s) {
    if (!s->prev) return s->head_extra;
    const block_rec *b = &s->recs[s->prev];
    const code_range *r = &s->ranges[b->range];
    return r->extra + ((b->start - r->start) >> 1);
}

static uint64_t *tail_slot(acct_state *s) {
    if (!s->prev) return s->tail_extra;
    const block_rec *b = &s->recs[s->prev];
    const code_range *r = &s->ranges[b->range];
    uint64_t tail = (b->end - r->start) >> 1;
    return r->extra + tail - (tail != 0);
}

/* Instruction fetch of a block that is not a plain repeat of the previous one. */
__attribute__((noinline)) static void fetch_slow(acct_state *s, uint64_t address, uint64_t end) {
    uint64_t before = s->fetch_hits + s->fetch_misses;
    uint64_t missed = cache_range(s, address, end, 0);
    s->cycles += missed;
    if (missed) *head_slot(s) += missed;
    s->lf_start = address;
    s->lf_end = end;
    s->lf_lines = s->fetch_hits + s->fetch_misses - before;
    s->lf_touch = ++s->cache_touch;
}

__attribute__((noinline, cold)) static void flag_and_stop(acct_state *s, void *uc, int reason,
                                                         uint64_t start, uint64_t end) {
    if (s->stop_reason == STOP_NONE || s->stop_reason == STOP_BUDGET) {
        s->stop_reason = reason;
        s->fault_start = start;
        s->fault_end = end;
    }
    if (s->emu_stop) s->emu_stop(uc);
}

__attribute__((noinline, cold)) static void budget_stop(acct_state *s, void *uc) {
    if (s->stop_reason != STOP_NONE) return;
    s->stop_reason = STOP_BUDGET;
    if (s->emu_stop) s->emu_stop(uc);
}

static inline void update_deadline(acct_state *s) {
    s->deadline = s->event_deadline < s->wall_check_at ? s->event_deadline : s->wall_check_at;
}

/* Cycles reached `deadline`. An event deadline, or the wall-clock timeout passed: stop
 * before this block and return 1. Unicorn 2.1.4 does not execute a block whose hook
 * requested the stop (measured: PC is the block's start afterwards), so the block is not
 * counted; it runs, and is counted, when emulation resumes there. Otherwise (the clock
 * looked at in time) set the next look and return 0: the block runs on. */
__attribute__((noinline, cold)) static int deadline_reached(acct_state *s, void *uc) {
    int reason = STOP_DEADLINE;
    if (s->cycles < s->event_deadline) {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if ((uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec < s->wall_deadline_ns) {
            s->wall_check_at = s->cycles + WALL_CHECK_CYCLES;
            update_deadline(s);
            return 0;
        }
        reason = STOP_TIMEOUT;
    }
    if (s->stop_reason == STOP_NONE) s->stop_reason = reason;
    if (s->emu_stop) s->emu_stop(uc);
    return 1;
}

PyMODINIT_FUNC PyInit__native(void);
void simcore_block_hook(void *uc, uint64_t address, uint32_t size, void *user_data);

/* A block outside the previous block's range: switch ranges and account it, or flag it. */
__attribute__((noinline, cold)) static void block_other_range(void *uc, uint64_t address,
                                                             uint32_t size, acct_state *s) {
    uint64_t end = address + size;
    for (int32_t i = 0; i < s->nranges; i++) {
        const code_range *r = &s->ranges[i];
        if (address >= r->start && end <= r->end) {
            s->last = r;
            simcore_block_hook(uc, address, size, s);
            return;
        }
    }
    flag_and_stop(s, uc, STOP_OUTSIDE_CODE, address, end);
}

/* The refill of a taken branch, charged at the last halfword of the block that branched
 * (through its record when it has one: folded into extra[] by fold_records). */
static inline void charge_refill(acct_state *s) {
    if (s->prev)
        s->recs[s->prev].taken++;
    else
        *s->tail_extra += s->refill_cycles;
}

/* Put a block on the line lists of its range; 0 if out of memory (it then stays off the
 * lazy path, which is always exact). */
static int register_record(acct_state *s, uint32_t idx) {
    block_rec *b = &s->recs[idx];
    code_range *r = &s->ranges[b->range];
    uint64_t lo = b->start, hi = b->end, cache_hi = s->cache_lo + s->cache_span;
    if (!r->reg_head) {
        uint64_t rlo = r->start > s->cache_lo ? r->start : s->cache_lo;
        uint64_t rhi = r->end < cache_hi ? r->end : cache_hi;
        if (rlo >= rhi) return 0;
        r->reg_first = rlo >> s->line_shift;
        r->reg_nlines = ((rhi - 1) >> s->line_shift) - r->reg_first + 1;
        r->reg_head = calloc(r->reg_nlines, sizeof(uint32_t));
        if (!r->reg_head) return 0;
    }
    if (lo < s->cache_lo) lo = s->cache_lo;
    if (hi > cache_hi) hi = cache_hi;
    uint64_t first = lo >> s->line_shift, last = (hi - 1) >> s->line_shift;
    if (s->nreg + (last - first + 1) > s->cap_reg) {
        uint64_t cap = s->cap_reg ? s->cap_reg : 1024;
        while (cap < s->nreg + (last - first + 1)) cap *= 2;
        if (cap > UINT32_MAX) return 0;
        uint32_t *next = realloc(s->reg_next, cap * sizeof(uint32_t));
        if (!next) return 0;
        s->reg_next = next;
        uint32_t *rec = realloc(s->reg_rec, cap * sizeof(uint32_t));
        if (!rec) return 0;
        s->reg_rec = rec;
        s->cap_reg = (uint32_t)cap;
    }
    for (uint64_t line = first; line <= last; line++) {
        uint32_t n = s->nreg++;
        s->reg_rec[n] = idx;
        s->reg_next[n] = r->reg_head[line - r->reg_first];
        r->reg_head[line - r->reg_first] = n;
    }
    b->registered = 1;
    return 1;
}

/* The plain path's instruction fetch from the cached range, then the budget. */
static inline void plain_fetch_and_budget(void *uc, acct_state *s, uint64_t address,
                                          uint64_t end, int over) {
    if (address - s->cache_lo < s->cache_span) {
        if (address == s->lf_start && end == s->lf_end && s->lf_touch == s->cache_touch) {
            s->fetch_hits += s->lf_lines;
        } else {
            fetch_slow(s, address, end);
            if (UNLIKELY(over)) {
                budget_stop(s, uc);
                return;
            }
            flush_if_pending(s, uc);
            return;
        }
    }
    if (UNLIKELY(over)) budget_stop(s, uc);
}

/* A block with a record whose lines are not known to be cached: the same block again
 * (caches without lazy stamps), or fetch them and mark it (its lines lie in distinct
 * sets, so all of them are cached now); then the budget. */
__attribute__((noinline)) static void record_fetch(void *uc, acct_state *s, uint32_t idx,
                                                   uint64_t address, uint64_t end) {
    if (address == s->lf_start && end == s->lf_end && s->lf_touch == s->cache_touch) {
        s->fetch_hits += s->lf_lines;
        if (UNLIKELY(s->instructions >= s->budget_limit)) budget_stop(s, uc);
        return;
    }
    fetch_slow(s, address, end);
    block_rec *b = &s->recs[idx];
    if (s->lazy_fetch && b->nlines && b->nlines <= s->cache_sets &&
        (b->registered || register_record(s, idx)))
        s->recs[idx].valid = 1;
    if (UNLIKELY(s->instructions >= s->budget_limit)) {
        budget_stop(s, uc);
        return;
    }
    flush_if_pending(s, uc);
}

/* A block accounted from the prefix arrays directly: records off (the reference the
 * tests compare with), or no room for another record. */
__attribute__((noinline)) static void block_plain(void *uc, uint64_t address, uint32_t size,
                                                  acct_state *s) {
    uint64_t end = address + size;
    const code_range *r = s->last;
    uint64_t off0 = address - r->start, off1 = end - r->start;
    /* Row i of the (n+1) x 2 prefix starts at element 2 * i = the (even) byte offset. */
    const uint64_t *p0 = r->prefix + off0, *p1 = r->prefix + off1;
    uint64_t dc = p1[0] - p0[0];
    if (UNLIKELY(dc >= UNKNOWN_COST)) {
        flag_and_stop(s, uc, STOP_UNKNOWN_INSTRUCTION, address, end);
        return;
    }
    uint64_t cycles = s->cycles + dc;
    uint64_t instructions = s->instructions + (p1[1] - p0[1]);
    if (address != s->cur_end && s->cur_end != NO_BLOCK) {
        cycles += s->refill_cycles;
        s->taken_branches++;
        charge_refill(s);
    }
    uint64_t tail = off1 >> 1;
    s->tail_extra = r->extra + tail - (tail != 0);
    s->head_extra = r->extra + (off0 >> 1);
    s->prev = 0;
    s->cur_start = address;
    s->cur_end = end;
    s->cycles = cycles;
    s->instructions = instructions;
    r->counts[off0 >> 1]++;
    r->ends[off1 >> 1]++;
    plain_fetch_and_budget(uc, s, address, end, instructions >= s->budget_limit);
}

/* Room for one more record; 0 when the pool is at max_recs or out of memory. */
static int grow_records(acct_state *s) {
    if (s->nrecs < s->cap_recs) return 1;
    if (s->cap_recs >= s->max_recs) return 0;
    uint64_t cap = (uint64_t)s->cap_recs * 2;
    if (cap > s->max_recs) cap = s->max_recs;
    block_rec *recs = realloc(s->recs, cap * sizeof(block_rec));
    if (!recs) return 0;
    s->recs = recs;
    s->cap_recs = (uint32_t)cap;
    return 1;
}

/* Records kept per start address (rec_of holds the last one used; `alt` chains the others
 * of the same start, for a block unicorn translated with another end). */
#define MAX_ALT 8

/* The block has no record under rec_of yet: find or make one, then account it. */
__attribute__((noinline)) static void block_new(void *uc, uint64_t address, uint32_t size,
                                                acct_state *s) {
    const code_range *r = s->last;
    uint64_t end = address + size, off0 = address - r->start, off1 = end - r->start;
    uint32_t head = r->rec_of[off0 >> 1];
    uint32_t idx = head;
    for (int k = 0; idx && k < MAX_ALT; k++, idx = s->recs[idx].alt) {
        if (s->recs[idx].end == end) {
            r->rec_of[off0 >> 1] = idx;
            simcore_block_hook(uc, address, size, s);
            return;
        }
    }
    const uint64_t *p0 = r->prefix + off0, *p1 = r->prefix + off1;
    uint64_t dc = p1[0] - p0[0];
    if (!s->use_records || dc >= UNKNOWN_COST || !grow_records(s)) {
        block_plain(uc, address, size, s);
        return;
    }
    idx = s->nrecs++;
    block_rec *b = &s->recs[idx];
    memset(b, 0, sizeof *b);
    b->start = address;
    b->end = end;
    b->dc = dc;
    b->di = p1[1] - p0[1];
    b->range = (uint16_t)(r - s->ranges);
    b->alt = head;
    if (address - s->cache_lo < s->cache_span && end > address) {
        uint64_t hi = end < s->cache_lo + s->cache_span ? end : s->cache_lo + s->cache_span;
        b->nlines = (uint32_t)(((hi - 1) >> s->line_shift) - (address >> s->line_shift) + 1);
    }
    r->rec_of[off0 >> 1] = idx;
    simcore_block_hook(uc, address, size, s);
}

/* UC_HOOK_BLOCK callback; user_data is the acct_state.
 * The common path reads the block's record (rec_of) and touches nothing else per block:
 * counts go into the record (folded into the arrays by fold_records), the extra[] slots
 * are found from the record when needed (head_slot, tail_slot). Every other call is out
 * of line and in tail position, so the common path saves few registers. */
__attribute__((visibility("default")))
void simcore_block_hook(void *uc, uint64_t address, uint32_t size, void *user_data) {
    acct_state *s = (acct_state *)user_data;
    if (UNLIKELY(s->cycles >= s->deadline) && deadline_reached(s, uc)) return;
    uint64_t end = address + size;
    const code_range *r = s->last;
    uint64_t off0 = address - r->start;  /* huge below the range */
    if (UNLIKELY(off0 >= r->end - r->start || end > r->end)) {
        block_other_range(uc, address, size, s);
        return;
    }
    uint32_t idx = r->rec_of[off0 >> 1];
    block_rec *b = &s->recs[idx];
    if (UNLIKELY(b->end != end)) {
        block_new(uc, address, size, s);
        return;
    }
    uint64_t cycles = s->cycles + b->dc;
    uint64_t instructions = s->instructions + b->di;
    if (address != s->cur_end && s->cur_end != NO_BLOCK) {
        cycles += s->refill_cycles;
        s->taken_branches++;
        charge_refill(s);
    }
    s->prev = idx;
    s->cur_end = end;
    s->cycles = cycles;
    s->instructions = instructions;
    b->count++;
    if (address - s->cache_lo < s->cache_span) {
        if (UNLIKELY(!b->valid)) {
            record_fetch(uc, s, idx, address, end);
            return;
        }
        /* Every line of it is still cached (none evicted since it was fetched): all hits;
         * its lines' LRU age is now (lazy_stamp). */
        s->fetch_hits += b->nlines;
        b->stamp = ++s->cache_clock;
        s->cache_touch++;
    }
    if (UNLIKELY(instructions >= s->budget_limit)) budget_stop(s, uc);
}

/* Fold the records' counts into the range arrays (before Python reads them). */
static void fold_records(acct_state *s) {
    for (uint32_t i = 1; i < s->nrecs; i++) {
        block_rec *b = &s->recs[i];
        if (!(b->count | b->taken)) continue;
        const code_range *r = &s->ranges[b->range];
        uint64_t tail = (b->end - r->start) >> 1;
        r->counts[(b->start - r->start) >> 1] += b->count;
        r->ends[tail] += b->count;
        r->extra[tail - (tail != 0)] += b->taken * s->refill_cycles;
        b->count = b->taken = 0;
    }
}

/* ------------------------------------------------- data reads through the virtual TLB
 *
 * A unicorn UC_HOOK_MEM_READ puts every load of the program on unicorn's slow path (it
 * disables the inline TLB lookup for all memory), and on Thumb-2 it breaks loads inside
 * IT blocks (below). Instead, the engine runs with unicorn's virtual TLB
 * (UC_TLB_VIRTUAL) and simcore_tlb_fill_hook translates each page when the TLB misses:
 * identity for everything except data accesses to the cached range, which go to an MMIO
 * alias of it (simcore_flash_data_read: charge the cache, return the bytes), and data
 * accesses to the single-cycle IO range, which go to an MMIO alias that charges and
 * forwards them. Instruction fetch from the cached range stays on plain memory, so code
 * runs from flash at full speed, and loads from RAM keep the inline fast path.
 *
 * The IT-block bug (unicorn 2.1.4, issue #2309): before calling a memory hook or a TLB
 * fill hook, unicorn restores the guest state of the current instruction
 * (cpu_restore_state), which writes that instruction's IT state into env->condexec_bits
 * in the middle of a translation block. QEMU's translator keeps condexec_bits zero while
 * a block runs and stores it only when the block ends inside an IT block, so once the IT
 * block ends within the same translation block the stale bits survive into the next
 * block's flags and it is decoded as if inside an IT block (a later conditional branch
 * becomes an invalid instruction). The fill hook therefore puts the invariant back: it
 * clears the IT bits (EPSR write with T set) after every data-access fill. MMIO callbacks
 * do not restore the state, so they need nothing. */

/* Permissions of an identity TLB entry filled for an access of this type.
 *
 * Stores on unicorn's fast path (unicorn 2.1.4, qemu/accel/tcg/cputlb.c): a TLB entry's
 * write side starts "not dirty" and each store then goes through notdirty_write(), which
 * looks up the memory region and invalidates translated code in the page; it marks the
 * entry dirty (so later stores are inline host stores) only when the entry does not allow
 * execution and no memory hook covers the address. With QEMU's own M-profile TLB every
 * SRAM page is executable, so every store of a program stays on that slow path (about a
 * quarter of all emulation time on the MNIST firmware, measured with perf). A data access
 * therefore gets a read/write entry without execute; an instruction fetch from the same
 * page refills it with all three, and translating code in a page marks its stores slow
 * again, so self-modifying code and code copied to RAM still see their stores. The
 * physical mapping's own protection still applies (a store to flash still faults). */
static inline int32_t plain_perms(int type) {
    return type == UC_MEM_FETCH_ ? UC_PROT_ALL_ : UC_PROT_READ_ | UC_PROT_WRITE_;
}

/* UC_HOOK_TLB_FILL callback of runs without the accounting (identity translation, see
 * plain_perms); user_data is the address of uc_reg_write, for the IT-bit repair below. */
__attribute__((visibility("default")))
int simcore_plain_tlb_fill_hook(void *uc, uint64_t vaddr, int type, uc_tlb_entry_ *e,
                                void *user_data) {
    e->paddr = vaddr;
    e->perms = plain_perms(type);
    if (type != UC_MEM_FETCH_ && user_data) {
        uint32_t epsr = EPSR_T;
        ((uc_reg_write_fn)user_data)(uc, UC_ARM_REG_EPSR_, &epsr);
    }
    return 1;
}

/* UC_HOOK_TLB_FILL callback (virtual TLB mode); user_data is the acct_state. */
__attribute__((visibility("default")))
int simcore_tlb_fill_hook(void *uc, uint64_t vaddr, int type, uc_tlb_entry_ *e,
                          void *user_data) {
    acct_state *s = (acct_state *)user_data;
    s->tlb_fills++;
    e->paddr = vaddr;
    e->perms = plain_perms(type);
    if (s->flash_alias && vaddr - s->cache_lo < s->cache_span) {
        /* One page, one kind of access: a fetch entry must not serve data reads. */
        if (type == UC_MEM_READ_) {
            if (!s->fast_page || !s->fast_page[(vaddr - s->cache_lo) >> s->page_shift])
                e->paddr = s->flash_alias + (vaddr - s->cache_lo);
            e->perms = UC_PROT_READ_;
        } else {
            e->perms = type == UC_MEM_FETCH_ ? UC_PROT_EXEC_ : UC_PROT_WRITE_;
        }
    } else if (vaddr - s->io_lo < s->io_span && type != UC_MEM_FETCH_) {
        e->paddr = s->io_alias + (vaddr - s->io_lo);
        e->perms = UC_PROT_READ_ | UC_PROT_WRITE_;
    }
    if (type != UC_MEM_FETCH_ && s->reg_write) {
        uint32_t epsr = EPSR_T;
        s->reg_write(uc, UC_ARM_REG_EPSR_, &epsr);
    }
    return 1;
}

/* MMIO read callback of the cached range's data alias.
 * Fast path: a load from the line of the previous data load, with no cache access in
 * between (data_touch == cache_touch), hits; that line is already the most recently
 * used one, so the LRU order stays as it is (as in cache_line, without the stamp). */
__attribute__((visibility("default")))
uint64_t simcore_flash_data_read(void *uc, uint64_t offset, unsigned size, void *user_data) {
    acct_state *s = (acct_state *)user_data;
    uint64_t address = s->cache_lo + offset, value = 0;
    uint64_t line = address >> s->line_shift;
    uint64_t missed = 0;
    if (s->dcache.ways) {
        missed = dcache_range(s, address, address + size);
    } else if (line == s->data_line && s->data_touch == s->cache_touch &&
               (address + size - 1) >> s->line_shift == line) {
        s->data_hits++;
    } else {
        missed = cache_range(s, address, address + size, 1);
        s->data_line = (address + size - 1) >> s->line_shift;
        s->data_touch = ++s->cache_touch;
    }
    s->cycles += missed;
    if (missed) *head_slot(s) += missed;
    flush_if_pending(s, uc);
    if (UNLIKELY(offset + size > s->copy_len)) {
        s->mem_read(uc, address, &value, size);
        return value;
    }
    const uint8_t *p = s->flash_copy + offset;  /* little-endian host and guest */
    switch (size) {
    case 1: return p[0];
    case 2: { uint16_t v; memcpy(&v, p, 2); return v; }
    case 4: { uint32_t v; memcpy(&v, p, 4); return v; }
    default: memcpy(&value, p, size < 8 ? size : 8); return value;
    }
}

/* MMIO callbacks of the single-cycle IO alias: charge, then forward to the real region. */
__attribute__((visibility("default")))
uint64_t simcore_fast_io_read(void *uc, uint64_t offset, unsigned size, void *user_data) {
    acct_state *s = (acct_state *)user_data;
    uint64_t value = 0;
    s->cycles -= s->fast_io_saving;
    *head_slot(s) -= s->fast_io_saving;
    s->fast_io_accesses++;
    s->mem_read(uc, s->io_lo + offset, &value, size);
    return value;
}

__attribute__((visibility("default")))
void simcore_fast_io_write(void *uc, uint64_t offset, unsigned size, uint64_t value,
                           void *user_data) {
    acct_state *s = (acct_state *)user_data;
    s->cycles -= s->fast_io_saving;
    *head_slot(s) -= s->fast_io_saving;
    s->fast_io_accesses++;
    s->mem_write(uc, s->io_lo + offset, &value, size);
}

/* ------------------------------------------------------------------ Python type */

typedef struct {
    PyObject_HEAD
    acct_state st;
    Py_buffer prefix_buf[MAX_RANGES];
    Py_buffer counts_buf[MAX_RANGES];
    Py_buffer ends_buf[MAX_RANGES];
    Py_buffer extra_buf[MAX_RANGES];
    Py_buffer copy_buf;  /* the flash copy of configure_aliases (obj NULL = none) */
} AccountingObject;

static int Accounting_init(AccountingObject *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"refill_cycles", "budget", NULL};
    unsigned long long refill = 0, budget = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "K|K", kwlist, &refill, &budget)) return -1;
    if (self->st.nranges) {
        PyErr_SetString(PyExc_RuntimeError, "Accounting already initialised");
        return -1;
    }
    self->st.refill_cycles = refill;
    self->st.budget = budget;
    self->st.budget_limit = budget ? budget : UINT64_MAX;
    self->st.deadline = self->st.event_deadline = self->st.wall_check_at = UINT64_MAX;
    self->st.cur_start = self->st.cur_end = NO_BLOCK;
    self->st.lf_start = self->st.lf_end = NO_BLOCK;
    self->st.last = &self->st.ranges[0];  /* empty range [0, 0) until add_range */
    self->st.tail_extra = self->st.head_extra = &self->st.sink;
    /* recs[0] is the sentinel: rec_of's 0 points there and its end matches no block. */
    free(self->st.recs);
    self->st.recs = calloc(1024, sizeof(block_rec));
    if (!self->st.recs) {
        PyErr_NoMemory();
        return -1;
    }
    self->st.recs[0].end = NO_BLOCK;
    self->st.nrecs = 1;
    self->st.cap_recs = 1024;
    self->st.max_recs = 4096;
    self->st.use_records = 1;
    self->st.lazy_allowed = 1;
    self->st.nreg = 1;  /* node 0 ends a line list */
    return 0;
}

static void Accounting_dealloc(AccountingObject *self) {
    for (int i = 0; i < self->st.nranges; i++) {
        PyBuffer_Release(&self->prefix_buf[i]);
        PyBuffer_Release(&self->counts_buf[i]);
        PyBuffer_Release(&self->ends_buf[i]);
        PyBuffer_Release(&self->extra_buf[i]);
        free(self->st.ranges[i].rec_of);
        free(self->st.ranges[i].reg_head);
    }
    free(self->st.recs);
    free(self->st.reg_next);
    free(self->st.reg_rec);
    if (self->copy_buf.obj) PyBuffer_Release(&self->copy_buf);
    PyMem_Free(self->st.cache_tags);
    PyMem_Free(self->st.cache_stamps);
    PyMem_Free(self->st.way_of);
    PyMem_Free(self->st.dcache.tags);
    PyMem_Free(self->st.dcache.stamps);
    PyMem_Free(self->st.resident);
    PyMem_Free(self->st.needed);
    PyMem_Free(self->st.fast_page);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *Accounting_add_range(AccountingObject *self, PyObject *args) {
    unsigned long long start;
    PyObject *prefix, *counts, *ends, *extra;
    if (!PyArg_ParseTuple(args, "KOOOO", &start, &prefix, &counts, &ends, &extra)) return NULL;
    int n = self->st.nranges;
    if (n >= MAX_RANGES) {
        PyErr_Format(PyExc_ValueError, "at most %d code ranges", MAX_RANGES);
        return NULL;
    }
    Py_buffer *pb = &self->prefix_buf[n], *cb = &self->counts_buf[n], *eb = &self->ends_buf[n];
    Py_buffer *xb = &self->extra_buf[n];
    if (PyObject_GetBuffer(extra, xb, PyBUF_C_CONTIGUOUS | PyBUF_WRITABLE | PyBUF_FORMAT) < 0)
        return NULL;
    if (PyObject_GetBuffer(prefix, pb, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) {
        PyBuffer_Release(xb);
        return NULL;
    }
    if (PyObject_GetBuffer(counts, cb, PyBUF_C_CONTIGUOUS | PyBUF_WRITABLE | PyBUF_FORMAT) < 0) {
        PyBuffer_Release(pb);
        PyBuffer_Release(xb);
        return NULL;
    }
    if (PyObject_GetBuffer(ends, eb, PyBUF_C_CONTIGUOUS | PyBUF_WRITABLE | PyBUF_FORMAT) < 0) {
        PyBuffer_Release(pb);
        PyBuffer_Release(cb);
        PyBuffer_Release(xb);
        return NULL;
    }
    /* counts has a spare last slot: an empty block at the very end of the range is
     * counted there (starts and ends cancel) instead of out of bounds. */
    Py_ssize_t nhalf = eb->len / 8 - 1;
    if (pb->itemsize != 8 || cb->itemsize != 8 || eb->itemsize != 8 || xb->itemsize != 8 ||
        nhalf < 0 || pb->len != (nhalf + 1) * 16 || cb->len != (nhalf + 1) * 8 ||
        xb->len != (nhalf + 1) * 8) {
        PyBuffer_Release(pb);
        PyBuffer_Release(cb);
        PyBuffer_Release(eb);
        PyBuffer_Release(xb);
        PyErr_SetString(PyExc_ValueError,
                        "prefix must be uint64 (n+1, 2), counts, ends and extra uint64 (n+1,)");
        return NULL;
    }
    uint32_t *rec_of = calloc((size_t)nhalf + 1, sizeof(uint32_t));
    if (!rec_of) {
        PyBuffer_Release(pb);
        PyBuffer_Release(cb);
        PyBuffer_Release(eb);
        PyBuffer_Release(xb);
        return PyErr_NoMemory();
    }
    code_range *r = &self->st.ranges[n];
    r->rec_of = rec_of;
    r->reg_head = NULL;
    /* Room for two ends per start; a run that needs more takes the plain path beyond. */
    uint64_t max_recs = (uint64_t)self->st.max_recs + 2 * (uint64_t)nhalf;
    self->st.max_recs = max_recs > (1u << 22) ? (1u << 22) : (uint32_t)max_recs;
    r->start = start;
    r->end = start + 2 * (uint64_t)nhalf;
    r->prefix = (const uint64_t *)pb->buf;
    r->counts = (uint64_t *)cb->buf;
    r->ends = (uint64_t *)eb->buf;
    r->extra = (uint64_t *)xb->buf;
    self->st.nranges = n + 1;
    self->st.last = &self->st.ranges[0];
    Py_RETURN_NONE;
}

/* The number of sets of a cache geometry, or 0 with a ValueError set when the
 * geometry is not one the LRU model can index (ways >= 1, power-of-two lines and sets). */
static uint32_t cache_sets(unsigned int size_bytes, unsigned int ways, unsigned int line_bytes) {
    if (ways == 0 || line_bytes == 0 || (line_bytes & (line_bytes - 1)) ||
        size_bytes % (ways * line_bytes)) {
        PyErr_SetString(PyExc_ValueError, "cache: ways >= 1, line a power of two, size a multiple");
        return 0;
    }
    uint32_t sets = size_bytes / (ways * line_bytes);
    if (sets == 0 || (sets & (sets - 1))) {
        PyErr_SetString(PyExc_ValueError, "cache: the number of sets must be a power of two");
        return 0;
    }
    return sets;
}

static PyObject *Accounting_configure_cache(AccountingObject *self, PyObject *args) {
    unsigned long long start, end, miss_cycles;
    unsigned int size_bytes, ways, line_bytes;
    if (!PyArg_ParseTuple(args, "KKIIIK", &start, &end, &size_bytes, &ways, &line_bytes,
                          &miss_cycles))
        return NULL;
    uint32_t sets = cache_sets(size_bytes, ways, line_bytes);
    if (sets == 0)
        return NULL;
    acct_state *s = &self->st;
    PyMem_Free(s->cache_tags);
    PyMem_Free(s->cache_stamps);
    s->cache_tags = PyMem_Malloc(sizeof(uint32_t) * sets * ways);
    s->cache_stamps = PyMem_Calloc((size_t)sets * ways, sizeof(uint64_t));
    if (!s->cache_tags || !s->cache_stamps) return PyErr_NoMemory();
    memset(s->cache_tags, 0xff, sizeof(uint32_t) * sets * ways);
    if (end <= start) {
        PyErr_SetString(PyExc_ValueError, "cache: empty address range");
        return NULL;
    }
    s->cache_lo = start;
    s->cache_span = end - start;
    s->cache_sets = sets;
    s->cache_ways = ways;
    s->line_shift = 0;
    while ((1u << s->line_shift) < line_bytes) s->line_shift++;
    PyMem_Free(s->way_of);
    s->way_of = NULL;
    if (ways > MAPPED_WAYS && ways < 256 && !((start | end) & (line_bytes - 1))) {
        /* One byte per line of the range (a range not aligned to lines keeps the scan). */
        s->way_of = PyMem_Calloc((end - start) >> s->line_shift, 1);
        if (!s->way_of) return PyErr_NoMemory();
    }
    s->sets_shift = 0;
    while ((1u << s->sets_shift) < sets) s->sets_shift++;
    s->lf_start = s->lf_end = NO_BLOCK;
    s->cache_touch = 1;
    s->miss_cycles = miss_cycles;
    /* A new, empty cache: no block's lines are in it, and the line lists start over. */
    s->lazy_fetch = s->lazy_allowed && ways <= MAPPED_WAYS;
    for (uint32_t i = 1; i < s->nrecs; i++) {
        block_rec *b = &s->recs[i];
        b->valid = b->registered = 0;
        b->stamp = 0;
        uint64_t hi = b->end < end ? b->end : end;
        b->nlines = b->start >= start && b->start < end && b->end > b->start
                        ? (uint32_t)(((hi - 1) >> s->line_shift) - (b->start >> s->line_shift) + 1)
                        : 0;
    }
    for (int32_t i = 0; i < s->nranges; i++) {
        free(s->ranges[i].reg_head);
        s->ranges[i].reg_head = NULL;
    }
    s->nreg = 1;
    Py_RETURN_NONE;
}

static PyObject *Accounting_configure_aliases(AccountingObject *self, PyObject *args) {
    unsigned long long flash_alias, io_lo, io_span, io_alias, reg_write, mem_read, mem_write;
    PyObject *copy;
    if (!PyArg_ParseTuple(args, "KKKKKKKO", &flash_alias, &io_lo, &io_span, &io_alias,
                          &reg_write, &mem_read, &mem_write, &copy))
        return NULL;
    acct_state *s = &self->st;
    if (!s->cache_span || !reg_write || !mem_read || !mem_write) {
        PyErr_SetString(PyExc_ValueError, "aliases need a cache and the unicorn functions");
        return NULL;
    }
    if (self->copy_buf.obj) {
        PyBuffer_Release(&self->copy_buf);
        s->flash_copy = NULL;
        s->copy_len = 0;
    }
    if (copy != Py_None) {
        if (PyObject_GetBuffer(copy, &self->copy_buf, PyBUF_C_CONTIGUOUS) < 0) return NULL;
        if ((uint64_t)self->copy_buf.len > s->cache_span) {
            PyBuffer_Release(&self->copy_buf);
            PyErr_SetString(PyExc_ValueError, "the flash copy is longer than the cached range");
            return NULL;
        }
        s->flash_copy = (const uint8_t *)self->copy_buf.buf;
        s->copy_len = (uint64_t)self->copy_buf.len;
    }
    s->flash_alias = flash_alias;
    s->io_lo = io_lo;
    s->io_span = io_span;
    s->io_alias = io_alias;
    s->reg_write = (uc_reg_write_fn)(uintptr_t)reg_write;
    s->mem_read = (uc_mem_fn)(uintptr_t)mem_read;
    s->mem_write = (uc_mem_fn)(uintptr_t)mem_write;
    Py_RETURN_NONE;
}

static PyObject *Accounting_configure_data_cache(AccountingObject *self, PyObject *args) {
    unsigned int size_bytes, ways, line_bytes;
    unsigned long long miss_cycles;
    if (!PyArg_ParseTuple(args, "IIIK", &size_bytes, &ways, &line_bytes, &miss_cycles))
        return NULL;
    uint32_t sets = cache_sets(size_bytes, ways, line_bytes);
    if (sets == 0)
        return NULL;
    data_cache *c = &self->st.dcache;
    PyMem_Free(c->tags);
    PyMem_Free(c->stamps);
    c->ways = 0;
    c->tags = PyMem_Malloc(sizeof(uint32_t) * sets * ways);
    c->stamps = PyMem_Calloc((size_t)sets * ways, sizeof(uint64_t));
    if (!c->tags || !c->stamps) return PyErr_NoMemory();
    memset(c->tags, 0xff, sizeof(uint32_t) * sets * ways);
    c->sets = sets;
    c->ways = ways;
    c->line_shift = 0;
    while ((1u << c->line_shift) < line_bytes) c->line_shift++;
    c->sets_shift = 0;
    while ((1u << c->sets_shift) < sets) c->sets_shift++;
    c->miss_cycles = miss_cycles;
    c->clock = 0;
    Py_RETURN_NONE;
}

static PyObject *Accounting_configure_resident_pages(AccountingObject *self, PyObject *args) {
    unsigned int page_bytes;
    unsigned long long ctl;
    PyObject *loaded = Py_None;
    if (!PyArg_ParseTuple(args, "IK|O", &page_bytes, &ctl, &loaded)) return NULL;
    acct_state *s = &self->st;
    s->nloaded = 0;
    if (loaded != Py_None) {
        PyObject *seq = PySequence_Fast(loaded, "loaded: a sequence of (start, end)");
        if (!seq) return NULL;
        Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
        for (Py_ssize_t i = 0; i < n && n <= MAX_LOADED; i++) {
            unsigned long long lo, hi;
            if (!PyArg_ParseTuple(PySequence_Fast_GET_ITEM(seq, i), "KK", &lo, &hi)) {
                Py_DECREF(seq);
                return NULL;
            }
            if (hi <= lo) continue;
            s->loaded_lo[s->nloaded] = lo >> s->line_shift;
            s->loaded_hi[s->nloaded] = ((hi - 1) >> s->line_shift) + 1;
            s->nloaded++;
        }
        if (n > MAX_LOADED) s->nloaded = 0;  /* too many pieces: every line counts */
        Py_DECREF(seq);
        if (n > 0 && s->nloaded == 0 && n <= MAX_LOADED) {
            /* Only empty ranges: no line holds image bytes, and no page is whole. */
            s->loaded_lo[0] = s->loaded_hi[0] = 0;
            s->nloaded = 1;
        }
    }
    if (!s->cache_span || !s->flash_alias || s->dcache.ways || !ctl) {
        PyErr_SetString(PyExc_ValueError, "resident pages need a shared cache, the aliases "
                                          "(configure_aliases) and uc_ctl");
        return NULL;
    }
    uint32_t shift = 0;
    while ((1u << shift) < page_bytes) shift++;
    if (page_bytes == 0 || (1u << shift) != page_bytes || shift < s->line_shift ||
        (page_bytes >> s->line_shift) > UINT16_MAX || s->cache_lo & (page_bytes - 1)) {
        PyErr_SetString(PyExc_ValueError, "page: a power of two of whole lines, the cached "
                                          "range starting on a page");
        return NULL;
    }
    size_t npages = (size_t)((s->cache_span + page_bytes - 1) >> shift);
    PyMem_Free(s->way_of);  /* the resident path scans the ways itself */
    s->way_of = NULL;
    PyMem_Free(s->resident);
    PyMem_Free(s->needed);
    PyMem_Free(s->fast_page);
    s->resident = PyMem_Calloc(npages, sizeof(uint16_t));
    s->needed = PyMem_Calloc(npages, sizeof(uint16_t));
    s->fast_page = PyMem_Calloc(npages, 1);
    if (!s->resident || !s->needed || !s->fast_page) {
        PyMem_Free(s->resident);
        PyMem_Free(s->needed);
        PyMem_Free(s->fast_page);
        s->resident = s->needed = NULL;
        s->fast_page = NULL;
        return PyErr_NoMemory();
    }
    s->page_shift = shift;
    s->lines_per_page = page_bytes >> s->line_shift;
    uint64_t first = s->cache_lo >> s->line_shift;
    uint64_t last = first + (s->cache_span >> s->line_shift);  /* exclusive */
    if (!s->nloaded) {
        for (size_t p = 0; p < npages; p++) s->needed[p] = (uint16_t)s->lines_per_page;
    }
    for (int32_t i = 0; i < s->nloaded; i++) {
        uint64_t lo = s->loaded_lo[i] < first ? first : s->loaded_lo[i];
        uint64_t hi = s->loaded_hi[i] > last ? last : s->loaded_hi[i];
        for (uint64_t line = lo; line < hi; line++) {
            int seen = 0;  /* a line two ranges share counts once */
            for (int32_t j = 0; j < i && !seen; j++)
                seen = line >= s->loaded_lo[j] && line < s->loaded_hi[j];
            if (!seen) s->needed[page_of_line(s, line)]++;
        }
    }
    /* Lines already in the cache (none before the first run) count towards their pages. */
    for (size_t i = 0; i < (size_t)s->cache_sets * s->cache_ways; i++) {
        if (s->cache_tags[i] != UINT32_MAX) {
            uint64_t set = i / s->cache_ways;
            uint64_t line = ((uint64_t)s->cache_tags[i] << s->sets_shift) | set;
            if (line_counts(s, line)) s->resident[page_of_line(s, line)]++;
        }
    }
    s->ctl = (uc_ctl_fn)(uintptr_t)ctl;
    Py_RETURN_NONE;
}

static PyObject *Accounting_set_emu_stop(AccountingObject *self, PyObject *arg) {
    unsigned long long fn = PyLong_AsUnsignedLongLong(arg);
    if (PyErr_Occurred()) return NULL;
    self->st.emu_stop = (emu_stop_fn)(uintptr_t)fn;
    Py_RETURN_NONE;
}

static PyObject *Accounting_set_way_map(AccountingObject *self, PyObject *arg) {
    int on = PyObject_IsTrue(arg);
    if (on < 0) return NULL;
    acct_state *s = &self->st;
    if (!on || s->resident || s->cache_ways <= MAPPED_WAYS || s->cache_ways >= 256) {
        PyMem_Free(s->way_of);
        s->way_of = NULL;
        return PyBool_FromLong(0);
    }
    if (!s->way_of) {
        /* Rebuilt from the tags, so it may be turned on at any time. */
        uint64_t line_lo = s->cache_lo >> s->line_shift;
        if (s->cache_lo & ((1u << s->line_shift) - 1) ||
            s->cache_span & ((1u << s->line_shift) - 1))
            return PyBool_FromLong(0);
        s->way_of = PyMem_Calloc(s->cache_span >> s->line_shift, 1);
        if (!s->way_of) return PyErr_NoMemory();
        for (size_t i = 0; i < (size_t)s->cache_sets * s->cache_ways; i++) {
            if (s->cache_tags[i] == UINT32_MAX) continue;
            uint64_t set = i / s->cache_ways;
            uint64_t line = ((uint64_t)s->cache_tags[i] << s->sets_shift) | set;
            s->way_of[line - line_lo] = (uint8_t)(i % s->cache_ways + 1);
        }
    }
    return PyBool_FromLong(1);
}

static PyObject *Accounting_set_reg_write(AccountingObject *self, PyObject *arg) {
    unsigned long long fn = PyLong_AsUnsignedLongLong(arg);
    if (PyErr_Occurred()) return NULL;
    self->st.reg_write = (uc_reg_write_fn)(uintptr_t)fn;
    Py_RETURN_NONE;
}

static PyObject *Accounting_set_fast_io_saving(AccountingObject *self, PyObject *arg) {
    unsigned long long saving = PyLong_AsUnsignedLongLong(arg);
    if (PyErr_Occurred()) return NULL;
    self->st.fast_io_saving = saving;
    Py_RETURN_NONE;
}

static PyObject *Accounting_set_budget(AccountingObject *self, PyObject *arg) {
    unsigned long long budget = PyLong_AsUnsignedLongLong(arg);
    if (PyErr_Occurred()) return NULL;
    self->st.budget = budget;
    self->st.budget_limit = budget ? budget : UINT64_MAX;
    if (self->st.stop_reason == STOP_BUDGET) self->st.stop_reason = STOP_NONE;
    Py_RETURN_NONE;
}

static PyObject *Accounting_set_deadline(AccountingObject *self, PyObject *arg) {
    unsigned long long deadline = PyLong_AsUnsignedLongLong(arg);
    if (PyErr_Occurred()) return NULL;
    self->st.event_deadline = deadline;
    update_deadline(&self->st);
    if (self->st.stop_reason == STOP_DEADLINE) self->st.stop_reason = STOP_NONE;
    Py_RETURN_NONE;
}

static PyObject *Accounting_set_timeout(AccountingObject *self, PyObject *arg) {
    unsigned long long at_ns = PyLong_AsUnsignedLongLong(arg);
    if (PyErr_Occurred()) return NULL;
    acct_state *s = &self->st;
    s->wall_deadline_ns = at_ns;
    s->wall_check_at = at_ns ? s->cycles : UINT64_MAX;
    update_deadline(s);
    if (s->stop_reason == STOP_TIMEOUT) s->stop_reason = STOP_NONE;
    Py_RETURN_NONE;
}

/* Cycles spent outside any block (exception entry and return, sleep): added to the
 * total and to the last halfword of the block that ran last, so the profile still
 * adds up to the total. */
static PyObject *Accounting_charge(AccountingObject *self, PyObject *arg) {
    unsigned long long cycles = PyLong_AsUnsignedLongLong(arg);
    if (PyErr_Occurred()) return NULL;
    self->st.cycles += cycles;
    self->st.charged_cycles += cycles;
    *tail_slot(&self->st) += cycles;
    Py_RETURN_NONE;
}

static PyObject *Accounting_flush_blocks(AccountingObject *self, PyObject *unused) {
    (void)unused;
    fold_records(&self->st);
    Py_RETURN_NONE;
}

static PyObject *Accounting_set_block_records(AccountingObject *self, PyObject *args) {
    int records, lazy;
    if (!PyArg_ParseTuple(args, "pp", &records, &lazy)) return NULL;
    acct_state *s = &self->st;
    if (s->cur_end != NO_BLOCK) {
        PyErr_SetString(PyExc_RuntimeError, "set_block_records: before the first block only");
        return NULL;
    }
    s->use_records = records;
    s->lazy_allowed = lazy;
    s->lazy_fetch = lazy && s->cache_span && s->cache_ways <= MAPPED_WAYS;
    Py_RETURN_NONE;
}

static PyObject *Accounting_clear_stop(AccountingObject *self, PyObject *unused) {
    (void)unused;
    self->st.stop_reason = STOP_NONE;
    self->st.fault_start = self->st.fault_end = 0;
    Py_RETURN_NONE;
}

static PyObject *Accounting_state_address(AccountingObject *self, PyObject *unused) {
    (void)unused;
    return PyLong_FromVoidPtr(&self->st);
}

static PyObject *Accounting_snapshot(AccountingObject *self, PyObject *unused) {
    (void)unused;
    acct_state *s = &self->st;
    int started = s->cur_end != NO_BLOCK;
    return Py_BuildValue(
        "{s:K,s:K,s:K,s:i,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:i,s:K,s:K}",
        "cycles", (unsigned long long)s->cycles,
        "instructions", (unsigned long long)s->instructions,
        "taken_branches", (unsigned long long)s->taken_branches,
        "stop_reason", (int)s->stop_reason,
        "fault_start", (unsigned long long)s->fault_start,
        "fault_end", (unsigned long long)s->fault_end,
        "block_start",
        (unsigned long long)(!started ? 0 : s->prev ? s->recs[s->prev].start : s->cur_start),
        "block_end", (unsigned long long)(started ? s->cur_end : 0),
        "fetch_hits", (unsigned long long)s->fetch_hits,
        "fetch_misses", (unsigned long long)s->fetch_misses,
        "data_hits", (unsigned long long)s->data_hits,
        "data_misses", (unsigned long long)s->data_misses,
        "cache_cycles", (unsigned long long)s->cache_cycles,
        "budget", (unsigned long long)s->budget,
        "fast_io_accesses", (unsigned long long)s->fast_io_accesses,
        "tlb_fills", (unsigned long long)s->tlb_fills,
        "deadline", (unsigned long long)s->event_deadline,
        "charged_cycles", (unsigned long long)s->charged_cycles,
        "fast_pages", (unsigned long long)s->fast_pages,
        "lru_unknown", (int)s->lru_unknown,
        "block_records", (unsigned long long)(s->nrecs - 1),
        "line_registrations", (unsigned long long)(s->nreg - 1));
}

static PyObject *Accounting_get_cycles(AccountingObject *self, void *closure) {
    (void)closure;
    return PyLong_FromUnsignedLongLong(self->st.cycles);
}

static PyObject *Accounting_get_instructions(AccountingObject *self, void *closure) {
    (void)closure;
    return PyLong_FromUnsignedLongLong(self->st.instructions);
}

static PyObject *Accounting_get_stop_reason(AccountingObject *self, void *closure) {
    (void)closure;
    return PyLong_FromLong(self->st.stop_reason);
}

static PyMethodDef Accounting_methods[] = {
    {"add_range", (PyCFunction)Accounting_add_range, METH_VARARGS,
     "add_range(start, prefix, counts, ends, extra): a code range's prefix (uint64 "
     "(n+1,2)), block-start counts, block-end counts and extra cycles (uint64 (n+1,) each)."},
    {"configure_cache", (PyCFunction)Accounting_configure_cache, METH_VARARGS,
     "configure_cache(start, end, size_bytes, ways, line_bytes, miss_cycles)."},
    {"configure_aliases", (PyCFunction)Accounting_configure_aliases, METH_VARARGS,
     "configure_aliases(flash_alias, io_lo, io_span, io_alias, uc_reg_write, uc_mem_read, "
     "uc_mem_write, flash_copy): data accesses through the virtual TLB (after "
     "configure_cache); flash_copy: the first bytes of the cached range (read-only; loads "
     "beyond it read unicorn's memory) or None."},
    {"configure_data_cache", (PyCFunction)Accounting_configure_data_cache, METH_VARARGS,
     "configure_data_cache(size_bytes, ways, line_bytes, miss_cycles): data reads of the "
     "cached range go through this cache instead of the shared one."},
    {"configure_resident_pages", (PyCFunction)Accounting_configure_resident_pages,
     METH_VARARGS,
     "configure_resident_pages(page_bytes, uc_ctl, loaded=None): data reads of pages "
     "wholly in the shared cache skip the MMIO alias (after configure_aliases; data hits "
     "then go uncounted, see acct_state.resident); loaded: the image's [start, end) "
     "ranges, whose lines alone count (None: every line)."},
    {"set_emu_stop", (PyCFunction)Accounting_set_emu_stop, METH_O,
     "set_emu_stop(address of uc_emu_stop)."},
    {"set_way_map", (PyCFunction)Accounting_set_way_map, METH_O,
     "set_way_map(on): look lines of a cache of more than 8 ways up in a per-line map "
     "(the default) or scan the ways; returns whether the map is in use (same results)."},
    {"set_reg_write", (PyCFunction)Accounting_set_reg_write, METH_O,
     "set_reg_write(address of uc_reg_write): for the TLB fill hook's IT-bit repair."},
    {"set_fast_io_saving", (PyCFunction)Accounting_set_fast_io_saving, METH_O,
     "set_fast_io_saving(cycles): subtracted per access to the single-cycle IO alias."},
    {"set_budget", (PyCFunction)Accounting_set_budget, METH_O,
     "set_budget(instructions): stop once this many have run (0 = no budget)."},
    {"set_deadline", (PyCFunction)Accounting_set_deadline, METH_O,
     "set_deadline(cycles): stop at the first block that starts at or after this many "
     "cycles (2**64-1 = none); clears a previous deadline stop."},
    {"set_timeout", (PyCFunction)Accounting_set_timeout, METH_O,
     "set_timeout(at_ns): stop (STOP_TIMEOUT) at the first block that starts once "
     "CLOCK_MONOTONIC (time.monotonic_ns) has reached at_ns (0 = none); the clock is "
     "looked at every 100,000 cycles. Clears a previous timeout stop."},
    {"charge", (PyCFunction)Accounting_charge, METH_O,
     "charge(cycles): add cycles spent outside any block (exception entry/return, sleep)."},
    {"clear_stop", (PyCFunction)Accounting_clear_stop, METH_NOARGS,
     "Forget the stop reason (before resuming)."},
    {"state_address", (PyCFunction)Accounting_state_address, METH_NOARGS,
     "Address of the C state: the user_data of the hooks."},
    {"snapshot", (PyCFunction)Accounting_snapshot, METH_NOARGS, "All counters as a dict."},
    {"flush_blocks", (PyCFunction)Accounting_flush_blocks, METH_NOARGS,
     "Fold the block records' counts into the counts/ends/extra arrays (before reading "
     "them)."},
    {"set_block_records", (PyCFunction)Accounting_set_block_records, METH_VARARGS,
     "set_block_records(records, lazy_fetch): account blocks through records (default on) "
     "and fetch with lazy stamps (default on for caches of at most 8 ways); off is the "
     "plain path the tests compare with. Before the first block only."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Accounting_getset[] = {
    {"cycles", (getter)Accounting_get_cycles, NULL, "cycles so far", NULL},
    {"instructions", (getter)Accounting_get_instructions, NULL, "instructions so far", NULL},
    {"stop_reason", (getter)Accounting_get_stop_reason, NULL, "0 none, 1 budget, 2 outside "
     "code, 3 unknown instruction, 4 deadline, 5 order lost, 6 timeout", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject AccountingType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "simcore.cycles._native.Accounting",
    .tp_doc = "Cycle-accounting state shared with the C unicorn hooks.",
    .tp_basicsize = sizeof(AccountingObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Accounting_init,
    .tp_dealloc = (destructor)Accounting_dealloc,
    .tp_methods = Accounting_methods,
    .tp_getset = Accounting_getset,
};

static struct PyModuleDef native_module = {
    PyModuleDef_HEAD_INIT, "simcore.cycles._native",
    "C hooks for unicorn: per-block cycle accounting and XIP cache model.", -1,
    NULL, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__native(void) {
    if (PyType_Ready(&AccountingType) < 0) return NULL;
    PyObject *m = PyModule_Create(&native_module);
    if (!m) return NULL;
    Py_INCREF(&AccountingType);
    if (PyModule_AddObject(m, "Accounting", (PyObject *)&AccountingType) < 0) {
        Py_DECREF(&AccountingType);
        Py_DECREF(m);
        return NULL;
    }
    PyModule_AddIntConstant(m, "STOP_NONE", STOP_NONE);
    PyModule_AddIntConstant(m, "STOP_BUDGET", STOP_BUDGET);
    PyModule_AddIntConstant(m, "STOP_OUTSIDE_CODE", STOP_OUTSIDE_CODE);
    PyModule_AddIntConstant(m, "STOP_UNKNOWN_INSTRUCTION", STOP_UNKNOWN_INSTRUCTION);
    PyModule_AddIntConstant(m, "STOP_DEADLINE", STOP_DEADLINE);
    PyModule_AddIntConstant(m, "STOP_ORDER_LOST", STOP_ORDER_LOST);
    PyModule_AddIntConstant(m, "STOP_TIMEOUT", STOP_TIMEOUT);
    PyModule_AddObject(m, "UNKNOWN_COST", PyLong_FromUnsignedLongLong(UNKNOWN_COST));
    return m;
}
