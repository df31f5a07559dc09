/* A plugin's config in C. The `config` capability hands a plugin its `config` table as JSON;
 * this reads the common case, a flat table of string values, without a JSON library.
 * `wicket plugin new --lang c` writes this file into every C project. */
#ifndef WICKET_CONFIG_H
#define WICKET_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#define WICKET_CONFIG_MAX 16

typedef struct {
    char *key;
    char *value;
} wicket_config_entry;

typedef struct {
    wicket_config_entry entries[WICKET_CONFIG_MAX];
    size_t count;
} wicket_config;

/* Parse `json` (a flat JSON object whose values are strings) into `out`. Returns NULL on
 * success, else a message for check-config (a static string: copy it to return it). `out`
 * must be freed with wicket_config_free either way. */
const char *wicket_config_parse(const uint8_t *json, size_t len, wicket_config *out);

/* The value of `key`, or NULL. */
const char *wicket_config_get(const wicket_config *c, const char *key);

/* The first key not in `allowed` (a NULL-terminated list), or NULL when all are known. */
const char *wicket_config_unknown(const wicket_config *c, const char *const *allowed);

void wicket_config_free(wicket_config *c);

#endif
