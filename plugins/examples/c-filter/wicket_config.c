/* See wicket_config.h. */
#include "wicket_config.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    const uint8_t *p;
    const uint8_t *end;
} cursor;

static void skip_space(cursor *c) {
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r')) c->p++;
}

static int hex_value(uint8_t h) {
    if (h >= '0' && h <= '9') return h - '0';
    if (h >= 'a' && h <= 'f') return h - 'a' + 10;
    if (h >= 'A' && h <= 'F') return h - 'A' + 10;
    return -1;
}

/* A JSON string at the cursor, unescaped into a new NUL-terminated buffer (UTF-8 kept as
 * is; \u escapes outside ASCII, and NUL, are refused). */
static const char *read_string(cursor *c, char **out) {
    *out = NULL;
    if (c->p >= c->end || *c->p != '"') return "config: expected a string";
    c->p++;
    char *buf = malloc((size_t)(c->end - c->p) + 1);
    if (!buf) return "config: out of memory";
    size_t n = 0;
    while (c->p < c->end && *c->p != '"') {
        uint8_t ch = *c->p++;
        if (ch == '\\') {
            if (c->p >= c->end) break;
            uint8_t e = *c->p++;
            switch (e) {
            case '"': ch = '"'; break;
            case '\\': ch = '\\'; break;
            case '/': ch = '/'; break;
            case 'b': ch = '\b'; break;
            case 'f': ch = '\f'; break;
            case 'n': ch = '\n'; break;
            case 'r': ch = '\r'; break;
            case 't': ch = '\t'; break;
            case 'u': {
                int v = 0;
                for (int i = 0; i < 4; i++) {
                    int h = c->p < c->end ? hex_value(*c->p++) : -1;
                    if (h < 0) {
                        free(buf);
                        return "config: bad \\u escape";
                    }
                    v = v * 16 + h;
                }
                if (v == 0 || v > 0x7f) {
                    free(buf);
                    return "config: only ASCII \\u escapes are supported";
                }
                ch = (uint8_t)v;
                break;
            }
            default:
                free(buf);
                return "config: bad escape in a string";
            }
        }
        buf[n++] = (char)ch;
    }
    if (c->p >= c->end) {
        free(buf);
        return "config: unterminated string";
    }
    c->p++; /* closing quote */
    buf[n] = 0;
    *out = buf;
    return NULL;
}

const char *wicket_config_parse(const uint8_t *json, size_t len, wicket_config *out) {
    memset(out, 0, sizeof *out);
    cursor c = {json, json + len};
    skip_space(&c);
    if (c.p == c.end) return NULL; /* no config: an empty table */
    if (*c.p != '{') return "config: expected a table";
    c.p++;
    skip_space(&c);
    if (c.p < c.end && *c.p == '}') return NULL;
    for (;;) {
        if (out->count == WICKET_CONFIG_MAX) return "config: too many keys";
        wicket_config_entry *e = &out->entries[out->count];
        skip_space(&c);
        const char *err = read_string(&c, &e->key);
        if (err) return err;
        out->count++;
        skip_space(&c);
        if (c.p >= c.end || *c.p != ':') return "config: expected ':'";
        c.p++;
        skip_space(&c);
        if (c.p >= c.end || *c.p != '"') return "config: every value must be a string";
        err = read_string(&c, &e->value);
        if (err) return err;
        skip_space(&c);
        if (c.p < c.end && *c.p == ',') {
            c.p++;
            continue;
        }
        if (c.p < c.end && *c.p == '}') return NULL;
        return "config: expected ',' or '}'";
    }
}

const char *wicket_config_get(const wicket_config *c, const char *key) {
    for (size_t i = 0; i < c->count; i++) {
        if (c->entries[i].key && strcmp(c->entries[i].key, key) == 0) return c->entries[i].value;
    }
    return NULL;
}

const char *wicket_config_unknown(const wicket_config *c, const char *const *allowed) {
    for (size_t i = 0; i < c->count; i++) {
        int known = 0;
        for (const char *const *a = allowed; *a; a++) {
            if (strcmp(c->entries[i].key, *a) == 0) known = 1;
        }
        if (!known) return c->entries[i].key;
    }
    return NULL;
}

void wicket_config_free(wicket_config *c) {
    for (size_t i = 0; i < c->count; i++) {
        free(c->entries[i].key);
        free(c->entries[i].value);
    }
    memset(c, 0, sizeof *c);
}
