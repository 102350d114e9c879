/*
 * fuzz_config.c - libFuzzer target: any bytes as a config file. Loading must
 * either succeed or fail with at least one "FILE:LINE..." diagnostic; it must
 * never crash, leak or read out of bounds (ASan/UBSan/LeakSanitizer).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct st_config *cfg = NULL;
    struct st_diag diag = {0};
    int rc = st_config_load_string("fuzz.yaml", (const char *)data, size, &cfg, &diag);
    if (rc == 0) {
        if (!cfg || diag.n != 0)
            abort();
        st_config_destroy(cfg);
    } else {
        if (cfg || diag.n == 0 || strncmp(diag.lines[0], "fuzz.yaml:", 10) != 0)
            abort();
    }
    st_diag_finish(&diag);
    return 0;
}
