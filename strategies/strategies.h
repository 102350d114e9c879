/*
 * strategies.h - the strategy implementations of this build (core/strategy.h
 * is their interface). Only main.c names them: it builds the table the
 * server resolves each route's strategy from.
 */
#ifndef ST_STRATEGIES_H
#define ST_STRATEGIES_H

#include "core/strategy.h"

extern const struct st_strategy st_strategy_bypass;
extern const struct st_strategy st_strategy_cache_aside;

#endif
