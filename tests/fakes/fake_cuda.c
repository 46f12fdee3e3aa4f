/* A stand-in for the CUDA driver library (libcuda.so.1), loaded by the hardware tests through
 * po_hw_opts.cuda_lib: two GPUs, an "H100" and a "T4", whose memory is host memory, so that
 * discovery and the transfer measurements run on machines without a GPU. fake_cuda_configure
 * changes the script. Only what src/hw/cuda_dlopen.c looks up is here. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef unsigned long long devptr;

static int n_gpus = 2, init_result = 0;
static const char *const names[2] = {"NVIDIA H100 80GB HBM3", "Tesla T4"};

/* gpus: how many GPUs cuDeviceGetCount reports; init: what cuInit returns (100 =
 * CUDA_ERROR_NO_DEVICE). */
void fake_cuda_configure(int gpus, int init) {
    n_gpus = gpus;
    init_result = init;
}

int cuInit(unsigned flags) {
    (void)flags;
    return init_result;
}
int cuDriverGetVersion(int *v) {
    *v = 12040;
    return 0;
}
int cuDeviceGetCount(int *n) {
    *n = n_gpus;
    return 0;
}
int cuDeviceGet(int *d, int ordinal) {
    if (ordinal < 0 || ordinal >= n_gpus) return 101; /* CUDA_ERROR_INVALID_DEVICE */
    *d = ordinal;
    return 0;
}
int cuDeviceGetName(char *name, int len, int d) {
    snprintf(name, (size_t)len, "%s", names[d % 2]);
    return 0;
}
int cuDeviceGetAttribute(int *v, int attr, int d) {
    switch (attr) {
    case 16: *v = d % 2 ? 40 : 132; break; /* multiprocessors */
    case 75: *v = d % 2 ? 7 : 9; break;    /* compute capability major */
    case 76: *v = d % 2 ? 5 : 0; break;    /* minor */
    default: *v = 0;
    }
    return 0;
}
int cuDeviceTotalMem_v2(size_t *bytes, int d) {
    *bytes = (size_t)(d % 2 ? 16 : 80) << 30;
    return 0;
}
int cuDeviceGetPCIBusId(char *id, int len, int d) {
    snprintf(id, (size_t)len, "0000:%02X:00.0", 0x65 + d); /* CUDA's form: 4-digit domain */
    return 0;
}
int cuDeviceCanAccessPeer(int *can, int d, int peer) {
    *can = d != peer;
    return 0;
}
int cuGetErrorString(int r, const char **s) {
    *s = r == 100 ? "no CUDA-capable device is detected" : "fake CUDA error";
    return 0;
}

/* Contexts are tokens; device memory is malloc'd host memory. */
int cuDevicePrimaryCtxRetain(void **ctx, int d) {
    *ctx = (void *)(intptr_t)(d + 1);
    return 0;
}
int cuDevicePrimaryCtxRelease_v2(int d) {
    (void)d;
    return 0;
}
int cuCtxSetCurrent(void *ctx) {
    (void)ctx;
    return 0;
}
int cuCtxSynchronize(void) { return 0; }
int cuMemAlloc_v2(devptr *p, size_t bytes) {
    void *m = malloc(bytes);
    if (!m) return 2; /* CUDA_ERROR_OUT_OF_MEMORY */
    memset(m, 0, bytes);
    *p = (devptr)(uintptr_t)m;
    return 0;
}
int cuMemFree_v2(devptr p) {
    free((void *)(uintptr_t)p);
    return 0;
}
int cuMemAllocHost_v2(void **p, size_t bytes) {
    *p = malloc(bytes);
    return *p ? 0 : 2;
}
int cuMemFreeHost(void *p) {
    free(p);
    return 0;
}
int cuMemcpyHtoD_v2(devptr dst, const void *src, size_t n) {
    memcpy((void *)(uintptr_t)dst, src, n);
    return 0;
}
int cuMemcpyDtoH_v2(void *dst, devptr src, size_t n) {
    memcpy(dst, (const void *)(uintptr_t)src, n);
    return 0;
}
int cuMemcpyPeer(devptr dst, void *dctx, devptr src, void *sctx, size_t n) {
    (void)dctx;
    (void)sctx;
    memcpy((void *)(uintptr_t)dst, (const void *)(uintptr_t)src, n);
    return 0;
}
