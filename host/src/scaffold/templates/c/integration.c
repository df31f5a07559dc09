/* {{name}}: a Wicket integration in C (world `wicket:plugin/{{world}}@0.1.0`): answers every
 * request with JSON {"greeting", "method", "path", "request_id"}.
 *
 * The rules of wit-bindgen's C bindings (README.md): drop the borrows you receive before
 * returning, return heap copies, free what the host hands you. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "{{world}}.h"
#include "wicket_config.h"

/* The greeting, read from the config once per instance. */
static char *greeting;

/* A string argument pointing at `s` (borrowed for the call; never return one). */
static {{world}}_string_t arg(const char *s) {
    {{world}}_string_t out;
    {{world}}_string_set(&out, s);
    return out;
}

/* NULL when the config is usable, else why not. */
static const char *load_config(void) {
    if (greeting) return NULL;
    {{world}}_string_t json;
    wicket_plugin_config_get(&json);
    wicket_config config;
    const char *err = wicket_config_parse(json.ptr, json.len, &config);
    {{world}}_string_free(&json);
    static const char *const allowed[] = {"greeting", NULL};
    if (!err && wicket_config_unknown(&config, allowed)) err = "unknown config key (the key is `greeting`)";
    if (!err) {
        const char *g = wicket_config_get(&config, "greeting");
        greeting = strdup(g ? g : "hello");
    }
    wicket_config_free(&config);
    return err;
}

bool exports_wicket_plugin_handler_check_config({{world}}_string_t *err) {
    const char *why = load_config();
    if (why) {
        {{world}}_string_dup(err, why);
        return false;
    }
    return true;
}

/* `s` as the inside of a JSON string: quotes, backslashes and control characters escaped. */
static size_t json_escape(char *out, const uint8_t *s, size_t len) {
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        uint8_t c = s[i];
        if (c == '"' || c == '\\') {
            out[n++] = '\\';
            out[n++] = (char)c;
        } else if (c < 0x20) {
            n += (size_t)sprintf(out + n, "\\u%04x", c);
        } else {
            out[n++] = (char)c;
        }
    }
    return n;
}

bool exports_wicket_plugin_handler_handle(exports_wicket_plugin_handler_borrow_request_t req,
                                          exports_wicket_plugin_handler_borrow_context_t ctx,
                                          exports_wicket_plugin_handler_own_response_t *ret,
                                          exports_wicket_plugin_handler_error_t *err) {
    bool ok = load_config() == NULL;
    if (ok) {
        {{world}}_string_t method, path, id, key = arg("request_id");
        wicket_plugin_types_method_request_method(req, &method);
        wicket_plugin_types_method_request_path(req, &path);
        if (!wicket_plugin_types_method_context_get(ctx, &key, &id)) {
            id.ptr = NULL;
            id.len = 0;
        }
        size_t glen = strlen(greeting);
        /* Escaping at most sextuples each byte. */
        char *body = malloc(64 + 6 * (glen + method.len + path.len + id.len));
        size_t n = 0;
        n += (size_t)sprintf(body + n, "{\"greeting\":\"");
        n += json_escape(body + n, (const uint8_t *)greeting, glen);
        n += (size_t)sprintf(body + n, "\",\"method\":\"");
        n += json_escape(body + n, method.ptr, method.len);
        n += (size_t)sprintf(body + n, "\",\"path\":\"");
        n += json_escape(body + n, path.ptr, path.len);
        n += (size_t)sprintf(body + n, "\",\"request_id\":\"");
        n += json_escape(body + n, id.ptr, id.len);
        n += (size_t)sprintf(body + n, "\"}");
        {{world}}_string_free(&method);
        {{world}}_string_free(&path);
        {{world}}_string_free(&id);

        /* A response we create is owned: returned here, so the host takes it. */
        *ret = wicket_plugin_types_constructor_response(200);
        wicket_plugin_types_borrow_response_t resp = wicket_plugin_types_borrow_response(*ret);
        {{world}}_string_t name = arg("content-type"), value = arg("application/json"), why;
        if (!wicket_plugin_types_method_response_set_header(resp, &name, &value, &why)) {
            {{world}}_string_free(&why);
        }
        {{world}}_list_u8_t bytes = {(uint8_t *)body, n};
        wicket_plugin_types_method_response_set_body(resp, &bytes);
        free(body);
    } else {
        err->status = 500;
        {{world}}_string_dup(&err->message, "Internal server error");
    }
    wicket_plugin_types_request_drop_borrow(req);
    wicket_plugin_types_context_drop_borrow(ctx);
    return ok;
}

void exports_{{world}}_describe({{world}}_description_t *ret) {
    {{world}}_string_dup(&ret->summary, "{{name}}: answers with a greeting");
    ret->capabilities.ptr = NULL;
    ret->capabilities.len = 0;
    wicket_plugin_description_config_key_t *key = malloc(sizeof *key);
    if (!key) abort();
    {{world}}_string_dup(&key->name, "greeting");
    key->kind = WICKET_PLUGIN_DESCRIPTION_VALUE_KIND_STRING;
    key->required = false;
    {{world}}_string_dup(&key->doc, "the greeting every answer carries");
    ret->config_keys.is_some = true;
    ret->config_keys.val.ptr = key;
    ret->config_keys.val.len = 1;
    ret->roles = 0;
}

void exports_{{world}}_plan({{world}}_instance_plan_t *ret) {
    memset(ret, 0, sizeof *ret);
    ret->request_body = WICKET_PLUGIN_DESCRIPTION_BODY_USE_NONE;
    ret->response_body = WICKET_PLUGIN_DESCRIPTION_BODY_USE_NONE;
}
