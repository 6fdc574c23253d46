r"""Chat templates of the tiny tool-calling models, one per tool-call format.

Each follows its family's official template in layout and tokens, shortened where the details do not
matter to a tiny model (no dates, shorter instructions). Assistant ``tool_calls`` arrive as the server
passes them: ``{"id", "type", "function": {"name", "arguments": <object>}}`` (a JSON-string
``arguments`` is inserted as is where the format is JSON).

* :data:`QWEN3_CODER_TEMPLATE`: ChatML; tools listed as ``<function><name>…<parameters>…`` in the system
  turn; calls replayed as ``<tool_call>\n<function=NAME>\n<parameter=P>\nVALUE\n</parameter>\n…``;
  results as ``<tool_response>`` blocks in a user turn.
* :data:`LLAMA3_TEMPLATE`: Llama 3.1 headers; tools as JSON in the first user turn; calls replayed
  as ``{"name": …, "parameters": …}``; results in an ``ipython`` turn.
* :data:`MISTRAL_TEMPLATE`: ``[INST]…[/INST]``; ``[AVAILABLE_TOOLS]`` before the last user turn; calls
  as ``[TOOL_CALLS][{"name": …, "arguments": …}]``; results as ``[TOOL_RESULTS]…[/TOOL_RESULTS]``.
* :data:`GEMMA4_TEMPLATE`: ``<|turn>ROLE\n…<turn|>``; tools as ``<|tool>declaration:NAME{…}<tool|>`` in
  the system turn; values in Gemma's syntax (``<|"|>`` quoted strings, bare keys and numbers); a call
  left pending ends the model turn with ``<|tool_response>``, and results are written into that same
  model turn, which the model then continues (no new generation prompt). ``enable_thinking=True`` puts
  ``<|think|>`` in the system turn; otherwise the generation prompt closes an empty thought channel.
"""

from __future__ import annotations

# Shared head: an optional leading system message, then the other messages.
_SPLIT_SYSTEM = r"""
{%- if messages and messages[0].role in ['system', 'developer'] %}
    {%- set system_message = messages[0].content if messages[0].content is string else '' %}
    {%- set loop_messages = messages[1:] %}
{%- else %}
    {%- set system_message = '' %}
    {%- set loop_messages = messages %}
{%- endif %}
"""

# A call's arguments as JSON text (objects are serialized; a string is assumed to be JSON already).
_JSON_ARGS = r"""
{%- macro json_args(arguments) %}
    {%- if arguments is string %}
        {{- arguments }}
    {%- else %}
        {{- arguments | tojson }}
    {%- endif %}
{%- endmacro %}
"""

QWEN3_CODER_TEMPLATE = (
    r"""
{%- macro xml_value(value) %}
    {%- if value is mapping or (value is iterable and value is not string) %}
        {{- value | tojson }}
    {%- else %}
        {{- value | string }}
    {%- endif %}
{%- endmacro %}
"""
    + _SPLIT_SYSTEM
    + r"""
{%- if tools or system_message %}
    {{- '<|im_start|>system\n' + system_message }}
    {%- if tools %}
        {%- if system_message %}
            {{- '\n\n' }}
        {%- endif %}
        {{- '# Tools\n\nYou have access to the following functions:\n\n<tools>' }}
        {%- for tool in tools %}
            {%- set fn = tool.function if tool.function is defined else tool %}
            {{- '\n<function>\n<name>' + fn.name + '</name>' }}
            {%- if fn.description %}
                {{- '\n<description>' + fn.description + '</description>' }}
            {%- endif %}
            {{- '\n<parameters>' }}
            {%- for pname, param in ((fn.parameters or {}).properties or {}).items() %}
                {{- '\n<parameter>\n<name>' + pname + '</name>' }}
                {%- if param.type %}
                    {{- '\n<type>' + param.type | string + '</type>' }}
                {%- endif %}
                {%- if param.description %}
                    {{- '\n<description>' + param.description + '</description>' }}
                {%- endif %}
                {{- '\n</parameter>' }}
            {%- endfor %}
            {{- '\n</parameters>\n</function>' }}
        {%- endfor %}
        {{- '\n</tools>\n\nTo call a function, reply with this and nothing else:\n\n<tool_call>\n'
            ~ '<function=example_function_name>\n<parameter=example_parameter_1>\nvalue_1\n</parameter>\n'
            ~ '</function>\n</tool_call>' }}
    {%- endif %}
    {{- '<|im_end|>\n' }}
{%- endif %}
{%- for message in loop_messages %}
    {%- set content = message.content if message.content is string else '' %}
    {%- if message.role in ['user', 'system'] %}
        {{- '<|im_start|>' + message.role + '\n' + content + '<|im_end|>\n' }}
    {%- elif message.role == 'assistant' %}
        {{- '<|im_start|>assistant\n' + content }}
        {%- for call in message.tool_calls or [] %}
            {%- set fn = call.function if call.function is defined else call %}
            {%- if content or not loop.first %}
                {{- '\n' }}
            {%- endif %}
            {{- '<tool_call>\n<function=' + fn.name + '>\n' }}
            {%- if fn.arguments is mapping %}
                {%- for key, value in fn.arguments.items() %}
                    {{- '<parameter=' + key + '>\n' + xml_value(value) + '\n</parameter>\n' }}
                {%- endfor %}
            {%- endif %}
            {{- '</function>\n</tool_call>' }}
        {%- endfor %}
        {{- '<|im_end|>\n' }}
    {%- elif message.role == 'tool' %}
        {%- if loop.first or loop_messages[loop.index0 - 1].role != 'tool' %}
            {{- '<|im_start|>user' }}
        {%- endif %}
        {{- '\n<tool_response>\n' + content + '\n</tool_response>' }}
        {%- if loop.last or loop_messages[loop.index0 + 1].role != 'tool' %}
            {{- '\n<|im_end|>\n' }}
        {%- endif %}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\n' }}
{%- endif %}
"""
)

LLAMA3_TEMPLATE = (
    _JSON_ARGS
    + r"""
{{- bos_token }}
"""
    + _SPLIT_SYSTEM
    + r"""
{%- if tools or system_message %}
    {{- '<|start_header_id|>system<|end_header_id|>\n\n' }}
    {%- if tools %}
        {{- 'Environment: ipython\n\n' }}
    {%- endif %}
    {{- system_message + '<|eot_id|>' }}
{%- endif %}
{%- set ns = namespace(tools_shown=false) %}
{%- for message in loop_messages %}
    {%- set content = message.content if message.content is string else '' %}
    {%- if message.role == 'user' %}
        {{- '<|start_header_id|>user<|end_header_id|>\n\n' }}
        {%- if tools and not ns.tools_shown %}
            {%- set ns.tools_shown = true %}
            {{- 'If a function helps to answer, respond with a JSON function call in the format '
                ~ '{"name": function name, "parameters": dictionary of argument name and its value}.\n\n' }}
            {%- for tool in tools %}
                {{- tool | tojson + '\n\n' }}
            {%- endfor %}
        {%- endif %}
        {{- content | trim + '<|eot_id|>' }}
    {%- elif message.role == 'assistant' %}
        {{- '<|start_header_id|>assistant<|end_header_id|>\n\n' + content | trim }}
        {%- for call in message.tool_calls or [] %}
            {%- set fn = call.function if call.function is defined else call %}
            {%- if not loop.first %}
                {{- '; ' }}
            {%- endif %}
            {{- '{"name": ' + fn.name | tojson + ', "parameters": ' + json_args(fn.arguments) + '}' }}
        {%- endfor %}
        {{- '<|eot_id|>' }}
    {%- elif message.role in ['tool', 'ipython'] %}
        {{- '<|start_header_id|>ipython<|end_header_id|>\n\n' + content + '<|eot_id|>' }}
    {%- elif message.role == 'system' %}
        {{- '<|start_header_id|>system<|end_header_id|>\n\n' + content | trim + '<|eot_id|>' }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|start_header_id|>assistant<|end_header_id|>\n\n' }}
{%- endif %}
"""
)

MISTRAL_TEMPLATE = (
    _JSON_ARGS
    + r"""
{{- bos_token }}
"""
    + _SPLIT_SYSTEM
    + r"""
{%- set ns = namespace(last_user=-1) %}
{%- for message in loop_messages %}
    {%- if message.role == 'user' %}
        {%- set ns.last_user = loop.index0 %}
    {%- endif %}
{%- endfor %}
{%- for message in loop_messages %}
    {%- set content = message.content if message.content is string else '' %}
    {%- if message.role == 'user' %}
        {%- if tools and loop.index0 == ns.last_user %}
            {{- '[AVAILABLE_TOOLS]' + tools | tojson + '[/AVAILABLE_TOOLS]' }}
        {%- endif %}
        {%- if system_message and loop.index0 == ns.last_user %}
            {{- '[INST]' + system_message + '\n\n' + content + '[/INST]' }}
        {%- else %}
            {{- '[INST]' + content + '[/INST]' }}
        {%- endif %}
    {%- elif message.role == 'assistant' %}
        {{- content }}
        {%- if message.tool_calls %}
            {{- '[TOOL_CALLS][' }}
            {%- for call in message.tool_calls %}
                {%- set fn = call.function if call.function is defined else call %}
                {%- if not loop.first %}
                    {{- ', ' }}
                {%- endif %}
                {{- '{"name": ' + fn.name | tojson + ', "arguments": ' + json_args(fn.arguments) + '}' }}
            {%- endfor %}
            {{- ']' }}
        {%- endif %}
        {{- eos_token }}
    {%- elif message.role == 'tool' %}
        {{- '[TOOL_RESULTS]' + content + '[/TOOL_RESULTS]' }}
    {%- endif %}
{%- endfor %}
"""
)

GEMMA4_TEMPLATE = (
    r"""
{%- macro gemma_value(value) %}
    {%- if value is string %}
        {{- '<|"|>' + value + '<|"|>' }}
    {%- elif value is mapping %}
        {{- '{' }}
        {%- for key, item in value | dictsort %}
            {{- (',' if not loop.first else '') + key + ':' + gemma_value(item) }}
        {%- endfor %}
        {{- '}' }}
    {%- elif value is sameas true or value is sameas false %}
        {{- 'true' if value else 'false' }}
    {%- elif value is none %}
        {{- 'null' }}
    {%- elif value is iterable %}
        {{- '[' }}
        {%- for item in value %}
            {{- (',' if not loop.first else '') + gemma_value(item) }}
        {%- endfor %}
        {{- ']' }}
    {%- else %}
        {{- value | string }}
    {%- endif %}
{%- endmacro %}
{{- bos_token }}
{%- set thinking = enable_thinking is defined and enable_thinking %}
"""
    + _SPLIT_SYSTEM
    + r"""
{%- if thinking or tools or system_message %}
    {{- '<|turn>system\n' }}
    {%- if thinking %}
        {{- '<|think|>\n' }}
    {%- endif %}
    {{- system_message }}
    {%- for tool in tools or [] %}
        {%- set fn = tool.function if tool.function is defined else tool %}
        {%- set declaration = {'description': fn.description or '', 'parameters': fn.parameters or {}} %}
        {{- '<|tool>declaration:' + fn.name + gemma_value(declaration) + '<tool|>' }}
    {%- endfor %}
    {{- '<turn|>\n' }}
{%- endif %}
{%- set ns = namespace(open_turn=false, previous='') %}
{%- for message in loop_messages %}
    {%- set content = message.content if message.content is string else '' %}
    {%- if message.role == 'assistant' %}
        {%- if ns.previous != 'assistant' %}
            {{- '<|turn>model\n' }}
        {%- endif %}
        {%- set calls = message.tool_calls or [] %}
        {%- for call in calls %}
            {%- set fn = call.function if call.function is defined else call %}
            {{- '<|tool_call>call:' + fn.name + gemma_value(fn.arguments if fn.arguments is mapping else {}) }}
            {{- '<tool_call|>' }}
        {%- endfor %}
        {%- set rs = namespace(count=0, scanning=true, name='') %}
        {%- for later in loop_messages[loop.index0 + 1:] %}
            {%- if rs.scanning and later.role == 'tool' %}
                {%- set rs.name = '' %}
                {%- for call in calls %}
                    {%- set fn = call.function if call.function is defined else call %}
                    {%- set by_id = call.id is defined and call.id == later.tool_call_id %}
                    {%- if by_id or (not rs.name and loop.index0 == rs.count) %}
                        {%- set rs.name = fn.name %}
                    {%- endif %}
                {%- endfor %}
                {%- set result = later.content if later.content is string else '' %}
                {{- '<|tool_response>response:' + rs.name + gemma_value({'value': result}) + '<tool_response|>' }}
                {%- set rs.count = rs.count + 1 %}
            {%- else %}
                {%- set rs.scanning = false %}
            {%- endif %}
        {%- endfor %}
        {%- set content = content.split('<channel|>')[-1] | trim %}
        {{- content }}
        {%- if content or not (calls or rs.count) %}
            {{- '<turn|>\n' }}
            {%- set ns.open_turn = false %}
        {%- else %}
            {%- if not rs.count %}
                {{- '<|tool_response>' }}
            {%- endif %}
            {%- set ns.open_turn = true %}
        {%- endif %}
        {%- set ns.previous = 'assistant' %}
    {%- elif message.role != 'tool' %}
        {%- if ns.open_turn %}
            {{- '<turn|>\n' }}
        {%- endif %}
        {{- '<|turn>' + message.role + '\n' + content | trim + '<turn|>\n' }}
        {%- set ns.open_turn = false %}
        {%- set ns.previous = message.role %}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt and not ns.open_turn %}
    {{- '<|turn>model\n' }}
    {%- if not thinking %}
        {{- '<|channel>thought\n<channel|>' }}
    {%- endif %}
{%- endif %}
"""
)
