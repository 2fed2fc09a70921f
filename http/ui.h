/* The console's files (http/ui/), embedded at build time and served at /ui/. */
#ifndef GW_HTTP_UI_H
#define GW_HTTP_UI_H

#include <stddef.h>

extern const char gw_ui_index[];
extern const size_t gw_ui_index_len;
extern const char gw_ui_js[];
extern const size_t gw_ui_js_len;
extern const char gw_ui_css[];
extern const size_t gw_ui_css_len;
extern const char gw_ui_icon[];
extern const size_t gw_ui_icon_len;

#endif
