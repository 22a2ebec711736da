// See include/CAllocCounter.h. glibc exports its allocator as __libc_malloc & co., so the
// wrappers need no dlsym (which itself allocates) and work from the first allocation on.
#define _GNU_SOURCE
#include "CAllocCounter.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
extern void __libc_free(void *);

static __thread uint64_t thread_allocs __attribute__((tls_model("initial-exec")));
static __thread uint64_t thread_frees __attribute__((tls_model("initial-exec")));
static uint64_t process_allocs;

static inline void counted(void) {
    thread_allocs++;
    __atomic_fetch_add(&process_allocs, 1, __ATOMIC_RELAXED);
}

void *malloc(size_t size) { counted(); return __libc_malloc(size); }
void *calloc(size_t n, size_t size) { counted(); return __libc_calloc(n, size); }
void *realloc(void *p, size_t size) { counted(); return __libc_realloc(p, size); }
void free(void *p) { if (p) thread_frees++; __libc_free(p); }

void *memalign(size_t alignment, size_t size) { counted(); return __libc_memalign(alignment, size); }
void *aligned_alloc(size_t alignment, size_t size) { counted(); return __libc_memalign(alignment, size); }
int posix_memalign(void **out, size_t alignment, size_t size) {
    if (alignment < sizeof(void *) || (alignment & (alignment - 1)) != 0) return EINVAL;
    counted();
    void *p = __libc_memalign(alignment, size);
    if (!p) return ENOMEM;
    *out = p;
    return 0;
}

uint64_t ipop_alloc_count_thread(void) { return thread_allocs; }
uint64_t ipop_free_count_thread(void) { return thread_frees; }
uint64_t ipop_alloc_count_process(void) { return __atomic_load_n(&process_allocs, __ATOMIC_RELAXED); }

int ipop_alloc_counter_active(void) {
    uint64_t before = thread_allocs;
    // Through volatile function pointers, so the compiler cannot elide the pair.
    void *(*volatile allocate)(size_t) = malloc;
    void (*volatile release)(void *) = free;
    void *p = allocate(24);
    int live = thread_allocs != before;
    release(p);
    return live;
}
