// Package httpadapter is the driving HTTP side of the hexagon: the echo
// server, the oapi-codegen strict handlers, the admin/key-holder auth
// middleware, and the reverse proxy mounted on every path the API does not
// claim. echo is confined to this package so that moving to echo v5 touches
// one folder only.
package httpadapter
