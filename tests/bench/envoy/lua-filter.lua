-- The peer an operator would write by hand (`make bench` variant `lua`): on SCIM routes, read the
-- whole request body and look for "members" and "admin" as plain strings. It understands nothing
-- (no JSON, no PATCH semantics, no group names); it is the cost of a hand-written body check.
function envoy_on_request(request_handle)
  local path = request_handle:headers():get(":path")
  if path == nil or string.sub(path, 1, 9) ~= "/scim/v2/" then
    return
  end
  local body = request_handle:body()
  if body == nil then
    return
  end
  local text = body:getBytes(0, body:length())
  if string.find(text, '"members"', 1, true) and string.find(text, "admin", 1, true) then
    request_handle:respond({[":status"] = "403"}, "blocked by the Lua string match")
  end
end
