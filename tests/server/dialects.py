# ruff: noqa: E501 - recorded wire bytes keep their lines whole
"""What each OpenAI-compatible server sends, byte for byte, for the fake upstream to replay.

Written after the servers' own answers (field order, spacing, line endings
and all): OpenAI, Ollama 0.5-0.6 (``/v1``), vLLM 0.6-0.8, llama.cpp's
server (b3xxx, which ends without ``[DONE]``, and b4xxx), LM Studio 0.3,
OpenRouter, Together and Mistral (Magistral). Each answer says "Hello!" in
two pieces; the reasoning ones think "Let me think." first.
"""

from __future__ import annotations

from tests.server.fake_openai import Reply, Script


def sse(*events: str, crlf: bool = False) -> bytes:
    """``data: EVENT`` lines, each followed by a blank line (``\\r\\n`` endings if ``crlf``)."""
    end = "\r\n" if crlf else "\n"
    return "".join(
        f"{event}{end}{end}" if event.startswith(":") else f"data: {event}{end}{end}" for event in events
    ).encode()


_OPENAI = '{"id":"chatcmpl-AaBb","object":"chat.completion.chunk","created":1733400000,"model":"gpt-4o-mini-2024-07-18","system_fingerprint":"fp_0ba0d124f1","choices":[%s],"usage":%s}'

OPENAI = sse(
    _OPENAI
    % (
        '{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}',
        "null",
    ),
    _OPENAI % ('{"index":0,"delta":{"content":"Hello"},"logprobs":null,"finish_reason":null}', "null"),
    _OPENAI % ('{"index":0,"delta":{"content":"!"},"logprobs":null,"finish_reason":null}', "null"),
    _OPENAI % ('{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}', "null"),
    _OPENAI
    % (
        "",
        '{"prompt_tokens":9,"completion_tokens":2,"total_tokens":11,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}',
    ),
    "[DONE]",
)

_OLLAMA = '{"id":"chatcmpl-417","object":"chat.completion.chunk","created":1733400000,"model":"qwen3:8b","system_fingerprint":"fp_ollama","choices":[{"index":0,"delta":{"role":"assistant","content":%s},"finish_reason":%s}]}'

#: Ollama with a Qwen3 model, reasoning left in the content between tags.
OLLAMA_THINKING = sse(
    _OLLAMA % ('"\\u003cthink\\u003e"', "null"),
    _OLLAMA % ('"\\nLet me think."', "null"),
    _OLLAMA % ('"\\n\\u003c/think\\u003e"', "null"),
    _OLLAMA % ('"\\n\\n"', "null"),
    _OLLAMA % ('"Hello"', "null"),
    _OLLAMA % ('"!"', "null"),
    _OLLAMA % ('""', '"stop"'),
    "[DONE]",
)

_VLLM = '{"id":"chatcmpl-8c1e","object":"chat.completion.chunk","created":1733400000,"model":"Qwen/Qwen3-8B","choices":[%s]%s}'

#: vLLM with a reasoning parser: the reasoning in ``reasoning_content``.
VLLM_REASONING = sse(
    _VLLM % ('{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}', ""),
    _VLLM % ('{"index":0,"delta":{"reasoning_content":"Let me"},"logprobs":null,"finish_reason":null}', ""),
    _VLLM % ('{"index":0,"delta":{"reasoning_content":" think."},"logprobs":null,"finish_reason":null}', ""),
    _VLLM % ('{"index":0,"delta":{"content":"Hello"},"logprobs":null,"finish_reason":null}', ""),
    _VLLM % ('{"index":0,"delta":{"content":"!"},"logprobs":null,"finish_reason":null}', ""),
    _VLLM % ('{"index":0,"delta":{"content":""},"logprobs":null,"finish_reason":"stop","stop_reason":null}', ""),
    _VLLM % ("", ',"usage":{"prompt_tokens":10,"total_tokens":15,"completion_tokens":5}'),
    "[DONE]",
)

_LLAMA = '{"choices":[{"finish_reason":%s,"index":0,"delta":%s}],"created":1733400000,"id":"chatcmpl-Xy","model":"gpt-3.5-turbo","system_fingerprint":"b3989-5e1c5e2f","object":"chat.completion.chunk"%s}'

#: llama.cpp's server of b3xxx: no ``[DONE]``, the body just ends after the finish.
LLAMA_CPP_NO_DONE = sse(
    _LLAMA % ("null", '{"role":"assistant","content":null}', ""),
    _LLAMA % ("null", '{"content":"Hello"}', ""),
    _LLAMA % ("null", '{"content":"!"}', ""),
    _LLAMA
    % (
        '"stop"',
        "{}",
        ',"usage":{"completion_tokens":2,"prompt_tokens":9,"total_tokens":11},"timings":{"prompt_n":9,"prompt_ms":41.2,"predicted_n":2,"predicted_ms":30.5}',
    ),
)

#: llama.cpp when the conversation outgrows ``--ctx-size`` once streaming: an ``error:`` event.
LLAMA_CPP_CONTEXT_ERROR = (
    sse(_LLAMA % ("null", '{"role":"assistant","content":null}', ""))
    + b'error: {"code":400,"message":"the request exceeds the available context size, try increasing it",'
    b'"type":"exceed_context_size_error","n_prompt_tokens":5012,"n_ctx":4096}\n\n'
)

_LMSTUDIO = '{"id":"chatcmpl-lms","object":"chat.completion.chunk","created":1733400000,"model":"qwen3-8b","system_fingerprint":"qwen3-8b","choices":[{"index":0,"delta":{%s},"logprobs":null,"finish_reason":%s}]}'

#: LM Studio: CRLF line endings behind its proxy, reasoning inline, the tag cut across events.
LM_STUDIO_THINKING = sse(
    _LMSTUDIO % ('"role":"assistant","content":"<thi"', "null"),
    _LMSTUDIO % ('"content":"nk>Let me think.</th"', "null"),
    _LMSTUDIO % ('"content":"ink>\\n\\nHello"', "null"),
    _LMSTUDIO % ('"content":"!"', "null"),
    _LMSTUDIO % ("", '"stop"'),
    "[DONE]",
    crlf=True,
)

_OPENROUTER = '{"id":"gen-1733400000-abc","provider":"DeepInfra","model":"deepseek/deepseek-r1","object":"chat.completion.chunk","created":1733400000,"choices":[{"index":0,"delta":{"role":"assistant","content":%s,"reasoning":%s},"finish_reason":%s,"native_finish_reason":%s,"logprobs":null}]%s}'

#: OpenRouter: processing comments, reasoning in ``reasoning``, usage beside the finish.
OPENROUTER_REASONING = sse(
    ": OPENROUTER PROCESSING",
    ": OPENROUTER PROCESSING",
    _OPENROUTER % ('""', '"Let me think."', "null", "null", ""),
    _OPENROUTER % ('"Hello"', "null", "null", "null", ""),
    _OPENROUTER % ('"!"', "null", "null", "null", ""),
    _OPENROUTER
    % ('""', "null", '"stop"', '"stop"', ',"usage":{"prompt_tokens":9,"completion_tokens":40,"total_tokens":49}'),
    "[DONE]",
)

#: OpenRouter when the provider's moderation stopped the answer.
OPENROUTER_FILTERED = sse(
    _OPENROUTER % ('"Hello"', "null", "null", "null", ""),
    _OPENROUTER
    % (
        '""',
        "null",
        '"content_filter"',
        '"SAFETY"',
        ',"usage":{"prompt_tokens":9,"completion_tokens":1,"total_tokens":10}',
    ),
    "[DONE]",
)

#: OpenRouter when its provider fails mid-answer: the error beside a finish_reason "error".
OPENROUTER_MID_STREAM_ERROR = sse(
    _OPENROUTER % ('"Hello"', "null", "null", "null", ""),
    '{"id":"gen-1733400000-abc","object":"chat.completion.chunk","created":1733400000,"model":"deepseek/deepseek-r1","provider":"DeepInfra","error":{"code":"server_error","message":"Provider disconnected unexpectedly"},"choices":[{"index":0,"delta":{"content":""},"finish_reason":"error","native_finish_reason":"error"}]}',
    "[DONE]",
)

_TOGETHER = '{"id":"8f0c7a","object":"chat.completion.chunk","created":1733400000,"model":"meta-llama/Llama-3.3-70B-Instruct-Turbo","choices":[{"index":0,"text":%s,"logprobs":null,"finish_reason":%s,"seed":null,"delta":{"token_id":%s,"role":"assistant","content":%s,"tool_calls":null}}],"usage":%s}'

TOGETHER = sse(
    _TOGETHER % ('"Hello"', "null", "9906", '"Hello"', "null"),
    _TOGETHER % ('"!"', "null", "0", '"!"', "null"),
    _TOGETHER % ('""', '"stop"', "128009", '""', '{"prompt_tokens":9,"completion_tokens":2,"total_tokens":11}'),
    "[DONE]",
)

#: Together's ``/v1/models``: a bare array.
TOGETHER_MODELS = Reply(
    200,
    b'[{"id":"meta-llama/Llama-3.3-70B-Instruct-Turbo","object":"model","created":0,"type":"chat",'
    b'"display_name":"Meta Llama 3.3 70B Instruct Turbo","organization":"Meta","context_length":131072},'
    b'{"id":"Qwen/Qwen2.5-7B-Instruct-Turbo","object":"model","created":0,"type":"chat",'
    b'"display_name":"Qwen 2.5 7B Instruct Turbo","organization":"Qwen","context_length":32768}]',
)

_MISTRAL = '{"id":"b1f2","object":"chat.completion.chunk","created":1733400000,"model":"magistral-medium-2506","choices":[{"index":0,"delta":{%s},"finish_reason":%s}]%s}'

#: Mistral's reasoning models: content as a list of parts, thinking first.
MISTRAL_PARTS = sse(
    _MISTRAL % ('"role":"assistant","content":""', "null", ""),
    _MISTRAL % ('"content":[{"type":"thinking","thinking":[{"type":"text","text":"Let me think."}]}]', "null", ""),
    _MISTRAL % ('"content":[{"type":"text","text":"Hello"}]', "null", ""),
    _MISTRAL % ('"content":"!"', "null", ""),
    _MISTRAL % ('"content":""', '"stop"', ',"usage":{"prompt_tokens":9,"total_tokens":49,"completion_tokens":40}'),
    "[DONE]",
)

#: A gateway that ignores ``stream: true`` and answers the whole completion at once.
NOT_STREAMED = (
    b'{\n  "id": "chatcmpl-gw1",\n  "object": "chat.completion",\n  "created": 1733400000,\n'
    b'  "model": "gpt-4o-mini",\n  "choices": [\n    {\n      "index": 0,\n      "message": {\n'
    b'        "role": "assistant",\n        "content": "Hello!",\n        "refusal": null\n      },\n'
    b'      "logprobs": null,\n      "finish_reason": "stop"\n    }\n  ],\n'
    b'  "usage": {\n    "prompt_tokens": 9,\n    "completion_tokens": 2,\n    "total_tokens": 11\n  }\n}\n'
)

#: A model that answered by calling a tool (vLLM with auto tool choice).
VLLM_TOOL_CALL = sse(
    _VLLM % ('{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}', ""),
    _VLLM
    % (
        '{"index":0,"delta":{"tool_calls":[{"id":"chatcmpl-tool-1","type":"function","index":0,"function":{"name":"get_weather","arguments":"{\\"city\\": \\"Paris\\"}"}}]},"logprobs":null,"finish_reason":null}',
        "",
    ),
    _VLLM % ('{"index":0,"delta":{"content":""},"logprobs":null,"finish_reason":"tool_calls","stop_reason":null}', ""),
    _VLLM % ("", ',"usage":{"prompt_tokens":80,"total_tokens":100,"completion_tokens":20}'),
    "[DONE]",
)


def answer(body: bytes, content_type: str = "text/event-stream") -> Script:
    """A script that sends ``body`` as a 200 answer."""
    return Script(body=body, content_type=content_type)


def refusal(status: int, body: bytes, content_type: str = "application/json", **headers: str) -> Script:
    """A script that refuses with ``status`` and ``body``."""
    return Script(status=status, body=body, content_type=content_type, headers=headers)


# The refusals, each as its server words it.
OPENAI_BAD_KEY = refusal(
    401,
    b'{\n    "error": {\n        "message": "Incorrect API key provided: sk-test-***-key. You can find your API key at https://platform.openai.com/account/api-keys.",\n'
    b'        "type": "invalid_request_error",\n        "param": null,\n        "code": "invalid_api_key"\n    }\n}\n',
)
OPENAI_UNKNOWN_MODEL = refusal(
    404,
    b'{\n    "error": {\n        "message": "The model `fake-huge` does not exist or you do not have access to it.",\n'
    b'        "type": "invalid_request_error",\n        "param": null,\n        "code": "model_not_found"\n    }\n}\n',
)
OPENAI_CONTEXT = refusal(
    400,
    b'{\n    "error": {\n        "message": "This model\'s maximum context length is 128000 tokens. However, your messages resulted in 130012 tokens. Please reduce the length of the messages.",\n'
    b'        "type": "invalid_request_error",\n        "param": "messages",\n        "code": "context_length_exceeded"\n    }\n}\n',
)
VLLM_CONTEXT = refusal(
    400,
    b'{"object":"error","message":"This model\'s maximum context length is 4096 tokens. However, you requested 5000 tokens '
    b'(4000 in the messages, 1000 in the completion). Please reduce the length of the messages or completion.",'
    b'"type":"BadRequestError","param":null,"code":400}',
)
LM_STUDIO_CONTEXT = refusal(
    400,
    b'{"error":"Trying to keep the first 5012 tokens when context the overflows. However, the model is loaded with '
    b"context length of only 4096 tokens, which is not enough. Try to load the model with a larger context length, "
    b'or provide a shorter input"}',
)
OPENAI_RATE_LIMIT = refusal(
    429,
    b'{\n    "error": {\n        "message": "Rate limit reached for gpt-4o-mini in organization org-x on requests per min (RPM): Limit 3, Used 3, Requested 1. Please try again in 20s.",\n'
    b'        "type": "requests",\n        "param": "null",\n        "code": "rate_limit_exceeded"\n    }\n}\n',
    **{"Retry-After": "20"},
)
OPENAI_NO_QUOTA = refusal(
    429,
    b'{\n    "error": {\n        "message": "You exceeded your current quota, please check your plan and billing details.",\n'
    b'        "type": "insufficient_quota",\n        "param": null,\n        "code": "insufficient_quota"\n    }\n}\n',
)
OPENROUTER_NO_CREDIT = refusal(
    402,
    b'{"error":{"message":"Insufficient credits. Add more using https://openrouter.ai/settings/credits","code":402}}',
)
OLLAMA_LOAD_FAILED = refusal(
    500, b'{"error":"llama runner process has terminated: error loading model: unable to allocate CUDA0 buffer"}'
)
NGINX_BAD_GATEWAY = refusal(
    502,
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n"
    b"<hr><center>nginx/1.27.3</center>\r\n</body>\r\n</html>\r\n",
    "text/html",
)
PLAIN_UNAVAILABLE = refusal(
    503, b"upstream connect error or disconnect/reset before headers. reset reason: overflow", "text/plain"
)
