"""OpenAPI post-processing: the refusals every operation can give, named in
the schema so clients (and the fuzzing drill, tests/web/test_api_fuzz.py)
know them — an expired token (401) anywhere authentication is required, a
page number past the end or an object out of scope (404) where a path or
page parameter exists, malformed input (400) where input exists."""

from __future__ import annotations

from typing import Any

COMMON = {
    "400": "请求格式错误或被业务规则拒绝",
    "401": "未认证，或令牌无效、已过期",
    "404": "对象不存在或不在可见范围内（不区分两者），或页码超出范围",
}


def add_common_responses(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    for operations in result.get("paths", {}).values():
        for op in operations.values():
            if not isinstance(op, dict) or "responses" not in op:
                continue
            responses = op["responses"]
            params = op.get("parameters", [])
            secured = op.get("security") != [{}] and op.get("security", [None]) != []
            if secured:
                responses.setdefault("401", {"description": COMMON["401"]})
            if any(p.get("in") == "path" or p.get("name") == "page" for p in params):
                responses.setdefault("404", {"description": COMMON["404"]})
            if params or "requestBody" in op:
                responses.setdefault("400", {"description": COMMON["400"]})
    return result
