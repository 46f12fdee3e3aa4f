/* CPU identity and vector features from cpuid. Features count only when the OS also saves the
 * registers they use (XGETBV): a hypervisor may advertise AVX-512 and not enable it. */
#include <stdio.h>
#include <string.h>

#include "hw/hw_internal.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>

static void cpuid(unsigned leaf, unsigned sub, unsigned r[4]) {
    r[0] = r[1] = r[2] = r[3] = 0;
    __cpuid_count(leaf, sub, r[0], r[1], r[2], r[3]);
}

static uint64_t xgetbv0(void) {
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}

/* Server microarchitectures the catalog describes, from family and model. */
static const char *uarch_of(const char *vendor, int family, int model) {
    if (strcmp(vendor, "AuthenticAMD") == 0) {
        if (family == 0x17) return model >= 0x30 ? "zen2" : "zen";
        if (family == 0x19) {
            if (model <= 0x0f || (model >= 0x20 && model <= 0x2f) || (model >= 0x40 && model <= 0x5f)) return "zen3";
            return "zen4";
        }
        if (family == 0x1a) return "zen5";
    } else if (strcmp(vendor, "GenuineIntel") == 0 && family == 6) {
        switch (model) {
        case 0x55: return "skylake-sp"; /* also Cascade Lake */
        case 0x6a:
        case 0x6c: return "icelake-sp";
        case 0x8f: return "sapphirerapids";
        case 0xcf: return "emeraldrapids";
        default: break;
        }
    }
    return "unknown";
}

void po__cpu_identify(po_cpu_info *cpu) {
    unsigned r[4];
    cpuid(0, 0, r);
    unsigned max_leaf = r[0];
    memcpy(cpu->vendor, &r[1], 4);
    memcpy(cpu->vendor + 4, &r[3], 4);
    memcpy(cpu->vendor + 8, &r[2], 4);
    cpu->vendor[12] = 0;

    cpuid(1, 0, r);
    int base_family = (int)((r[0] >> 8) & 0xf), base_model = (int)((r[0] >> 4) & 0xf);
    cpu->stepping = (int)(r[0] & 0xf);
    cpu->family = base_family == 0xf ? base_family + (int)((r[0] >> 20) & 0xff) : base_family;
    cpu->model_id =
        (base_family == 0x6 || base_family == 0xf) ? base_model | (int)(((r[0] >> 16) & 0xf) << 4) : base_model;
    bool osxsave = (r[2] >> 27) & 1, avx = (r[2] >> 28) & 1, fma = (r[2] >> 12) & 1;
    uint64_t xcr0 = osxsave ? xgetbv0() : 0;
    bool os_avx = (xcr0 & 0x6) == 0x6;                /* XMM and YMM state */
    bool os_avx512 = os_avx && (xcr0 & 0xe0) == 0xe0; /* opmask, ZMM_Hi256, Hi16_ZMM */
    bool os_amx = (xcr0 & 0x60000) == 0x60000;        /* XTILECFG, XTILEDATA */

    if (max_leaf >= 7) {
        cpuid(7, 0, r);
        unsigned max_sub = r[0];
        cpu->features.avx2 = avx && os_avx && ((r[1] >> 5) & 1);
        cpu->features.fma = fma && os_avx;
        cpu->features.avx512f = os_avx512 && ((r[1] >> 16) & 1);
        cpu->features.amx = os_amx && ((r[3] >> 24) & 1) && ((r[3] >> 22) & 1);
        if (max_sub >= 1) {
            cpuid(7, 1, r);
            cpu->features.avx512_bf16 = os_avx512 && ((r[0] >> 5) & 1);
        }
    }

    cpuid(0x80000000u, 0, r);
    if (r[0] >= 0x80000004u) {
        char brand[49] = {0};
        for (unsigned i = 0; i < 3; i++) {
            cpuid(0x80000002u + i, 0, r);
            memcpy(brand + 16 * i, r, 16);
        }
        /* Trim the padding some parts put around the brand string. */
        char *s = brand;
        while (*s == ' ')
            s++;
        size_t len = strlen(s);
        while (len && s[len - 1] == ' ')
            s[--len] = 0;
        snprintf(cpu->model, sizeof cpu->model, "%s", s);
    }
    snprintf(cpu->uarch, sizeof cpu->uarch, "%s", uarch_of(cpu->vendor, cpu->family, cpu->model_id));
}

#else

void po__cpu_identify(po_cpu_info *cpu) { snprintf(cpu->uarch, sizeof cpu->uarch, "unknown"); }

#endif
