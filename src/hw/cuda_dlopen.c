/* The CUDA driver API, loaded at run time. The driver library (libcuda.so.1) ships with the
 * NVIDIA driver itself, so wherever a GPU can run, it is there, whatever toolkit paropt was or
 * was not built with; the runtime library (libcudart) is a versioned toolkit piece and is not
 * needed for what discovery asks. Nothing here links against CUDA: without the library or
 * without a GPU, the GPUs are "not present". */
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#include "hw/hw_internal.h"

/* Stores dlsym's result in a function pointer (POSIX guarantees the conversion). */
static bool sym(void *lib, const char *name, void *fn_ptr) {
    void *p = dlsym(lib, name);
    memcpy(fn_ptr, &p, sizeof p);
    return p != NULL;
}

bool po__cuda_open(const char *lib, po__cuda *c, char *why, size_t why_size) {
    memset(c, 0, sizeof *c);
    if (!lib) lib = "libcuda.so.1";
    if (!*lib) {
        snprintf(why, why_size, "not looked for");
        return false;
    }
    c->lib = dlopen(lib, RTLD_NOW | RTLD_LOCAL);
    if (!c->lib) {
        const char *e = dlerror();
        snprintf(why, why_size, "%s", e ? e : lib);
        return false;
    }
    static const char *const required[] = {"cuInit",
                                           "cuDriverGetVersion",
                                           "cuDeviceGetCount",
                                           "cuDeviceGet",
                                           "cuDeviceGetName",
                                           "cuDeviceGetAttribute",
                                           "cuDeviceTotalMem_v2",
                                           "cuDeviceGetPCIBusId",
                                           "cuDeviceCanAccessPeer"};
    void *const slots[] = {&c->init,
                           &c->driver_get_version,
                           &c->device_get_count,
                           &c->device_get,
                           &c->device_get_name,
                           &c->device_get_attribute,
                           &c->device_total_mem,
                           &c->device_get_pci_bus_id,
                           &c->device_can_access_peer};
    for (size_t i = 0; i < sizeof required / sizeof *required; i++)
        if (!sym(c->lib, required[i], slots[i])) {
            snprintf(why, why_size, "%s lacks %s", lib, required[i]);
            po__cuda_close(c);
            return false;
        }
    sym(c->lib, "cuGetErrorString", &c->get_error_string);
    sym(c->lib, "cuDevicePrimaryCtxRetain", &c->primary_ctx_retain);
    sym(c->lib, "cuDevicePrimaryCtxRelease_v2", &c->primary_ctx_release);
    sym(c->lib, "cuCtxSetCurrent", &c->ctx_set_current);
    sym(c->lib, "cuCtxSynchronize", &c->ctx_synchronize);
    sym(c->lib, "cuMemAlloc_v2", &c->mem_alloc);
    sym(c->lib, "cuMemFree_v2", &c->mem_free);
    sym(c->lib, "cuMemAllocHost_v2", &c->mem_alloc_host);
    sym(c->lib, "cuMemFreeHost", &c->mem_free_host);
    sym(c->lib, "cuMemcpyHtoD_v2", &c->memcpy_htod);
    sym(c->lib, "cuMemcpyDtoH_v2", &c->memcpy_dtoh);
    sym(c->lib, "cuMemcpyPeer", &c->memcpy_peer);

    char err[96];
    po__cu_result r = c->init(0);
    if (r != 0) {
        /* CUDA_ERROR_NO_DEVICE (100) on a machine with a driver and no GPU is the usual case. */
        snprintf(why, why_size, "cuInit: %s", po__cuda_error(c, r, err, sizeof err));
        po__cuda_close(c);
        return false;
    }
    if (c->driver_get_version(&c->driver_version) != 0) c->driver_version = 0;
    return true;
}

void po__cuda_close(po__cuda *c) {
    if (c->lib) dlclose(c->lib);
    memset(c, 0, sizeof *c);
}

const char *po__cuda_error(const po__cuda *c, po__cu_result r, char *buf, size_t size) {
    const char *s = NULL;
    if (c->get_error_string && c->get_error_string(r, &s) != 0) s = NULL;
    snprintf(buf, size, "%s (%d)", s ? s : "CUDA error", r);
    return buf;
}

bool po__cuda_can_transfer(const po__cuda *c) {
    return c->lib && c->primary_ctx_retain && c->primary_ctx_release && c->ctx_set_current && c->ctx_synchronize &&
           c->mem_alloc && c->mem_free && c->mem_alloc_host && c->mem_free_host && c->memcpy_htod && c->memcpy_dtoh &&
           c->memcpy_peer;
}
