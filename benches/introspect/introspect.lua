-- wrk: every request is one token introspection (RFC 7662), POST with client_secret_basic.
-- INTROSPECT_BASIC is `base64(client_id:client_secret)`, INTROSPECT_TOKEN the token.
wrk.method = "POST"
wrk.headers["Authorization"] = "Basic " .. assert(os.getenv("INTROSPECT_BASIC"), "INTROSPECT_BASIC")
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.body = "token=" .. assert(os.getenv("INTROSPECT_TOKEN"), "INTROSPECT_TOKEN")
