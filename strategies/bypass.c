/*
 * bypass.c - pure proxying: nothing is looked up, nothing is stored.
 */
#include "strategies/strategies.h"

static void on_request(struct st_exchange *x)
{
    st_exchange_count_bypass(x);
    st_exchange_set_cache_status(x, "strata; fwd=bypass");
    st_exchange_forward(x);
}

const struct st_strategy st_strategy_bypass = {
    .name = "bypass",
    .on_request = on_request,
};
