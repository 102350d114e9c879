/*
 * fuzz_config.c - libFuzzer target: any bytes as a config file. Loading must
 * either succeed or fail with diagnostics that each start "fuzz.yaml:LINE:"
 * (LINE a number); it must never crash, leak or read out of bounds
 * (ASan/UBSan/LeakSanitizer).
 */
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"

/* "fuzz.yaml:" followed by digits and a colon. */
static int located(const char *line)
{
    if (strncmp(line, "fuzz.yaml:", 10) != 0)
        return 0;
    const char *p = line + 10;
    if (!isdigit((unsigned char)*p))
        return 0;
    while (isdigit((unsigned char)*p))
        p++;
    return *p == ':';
}

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
        if (cfg || diag.n == 0)
            abort();
        for (size_t i = 0; i < diag.n; i++)
            if (!located(diag.lines[i]))
                abort();
    }
    st_diag_finish(&diag);
    return 0;
}
