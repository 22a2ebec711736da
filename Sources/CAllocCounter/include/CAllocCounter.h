// CAllocCounter: counts heap allocations of the process that links it.
//
// Linking this target into an executable (the hot-path benchmark, the test bundle) interposes
// malloc, calloc, realloc, posix_memalign, aligned_alloc, memalign and free: the definitions in
// the executable come first in the dynamic linker's lookup order, so every allocation of Swift,
// Foundation and swift-crypto goes through them. Each forwards to glibc's own entry point
// (__libc_malloc, ...) after bumping a counter. Counting only: no behaviour changes.
//
// Two counters: one per thread (what a single-threaded measurement should read, unaffected by
// tests running in parallel on other threads) and one for the whole process.
#ifndef CALLOCCOUNTER_H
#define CALLOCCOUNTER_H

#include <stdint.h>

// Allocations (malloc, calloc, realloc, the aligned variants) made by the calling thread so far.
uint64_t ipop_alloc_count_thread(void);
// Frees made by the calling thread so far.
uint64_t ipop_free_count_thread(void);
// Allocations made by all threads so far.
uint64_t ipop_alloc_count_process(void);
// 1 if the interposition is live (an allocation made through malloc was counted).
int ipop_alloc_counter_active(void);

#endif
