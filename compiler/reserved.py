"""Names a node id cannot take because the built module already uses them.

A node's module is installed as an attribute of the compiled `torch.fx.GraphModule` (and of
plain `nn.Module` containers for dotted ids like `stage1.conv`), so an id part that is an
`nn.Module` attribute (`train`, `double`, `training`, ...) or, at the top level, a GraphModule
attribute (`graph`, `code`, `meta`, ...) cannot hold it. The graph check refuses such ids at
validation, where torch is not imported, hence these lists are written out; a test compares
them with the installed torch. Dunder names (`__init__`) are refused as a pattern.
"""

from __future__ import annotations

MODULE_ATTRIBUTES = frozenset("""
    T_destination _apply _backward_hooks _backward_pre_hooks _buffers _call_impl
    _compiled_call_impl _forward_hooks _forward_hooks_always_called _forward_hooks_with_kwargs
    _forward_pre_hooks _forward_pre_hooks_with_kwargs _get_backward_hooks
    _get_backward_pre_hooks _get_name _is_full_backward_hook _load_from_state_dict
    _load_state_dict_post_hooks _load_state_dict_pre_hooks _maybe_warn_non_full_backward_hook
    _modules _named_members _non_persistent_buffers_set _parameters
    _register_load_state_dict_pre_hook _register_state_dict_hook _replicate_for_data_parallel
    _save_to_state_dict _slow_forward _state_dict_hooks _state_dict_pre_hooks _version
    _wrapped_call_impl add_module apply bfloat16 buffers call_super_init children compile cpu
    cuda double dump_patches eval extra_repr float forward get_buffer get_extra_state
    get_parameter get_submodule half ipu load_state_dict modules mtia named_buffers
    named_children named_modules named_parameters parameters register_backward_hook
    register_buffer register_forward_hook register_forward_pre_hook register_full_backward_hook
    register_full_backward_pre_hook register_load_state_dict_post_hook
    register_load_state_dict_pre_hook register_module register_parameter
    register_state_dict_post_hook register_state_dict_pre_hook requires_grad_ set_extra_state
    set_submodule share_memory state_dict to to_empty train training type xpu zero_grad
""".split())
"""Attributes of every torch.nn.Module (class and instance), dunders aside."""

GRAPH_MODULE_ATTRIBUTES = frozenset("""
    _boxed_call _code _create_node_hooks _deepcopy_hooks _deepcopy_init _erase_node_hooks _graph
    _lineno_map _prologue_start _recompile_submodules _register_create_node_hook
    _register_deepcopy_hook _register_erase_node_hook _register_replace_node_hook _replace_hooks
    _set_replace_hook _tracer_cls _tracer_extras _unregister_create_node_hook
    _unregister_deepcopy_hook _unregister_erase_node_hook _unregister_replace_node_hook _wrapped_call
    add_submodule code delete_all_unused_submodules delete_submodule graph meta print_readable
    recompile shape_env to_folder
""".split())
"""Further attributes of torch.fx.GraphModule: clash with a top-level id only."""


def clash(node_id: str) -> str | None:
    """The part of `node_id` that a built module cannot hold as a child name, else None."""
    parts = node_id.split(".")
    for i, part in enumerate(parts):
        if part in MODULE_ATTRIBUTES or (i == 0 and part in GRAPH_MODULE_ATTRIBUTES) or \
                (part.startswith("__") and part.endswith("__")):
            return part
    return None
