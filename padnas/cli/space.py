"""``padnas space``: a search space's size, signature and ops per layer."""

from __future__ import annotations

import json

import click

from padnas.core.cli import handle_errors
from padnas.space import get_space
from padnas.space.choice import space_option


@click.command(
    epilog="""\b
Examples:
  padnas space --space basic
  padnas space --space large --json > large.json
  padnas space --space v3     # MobileNetV3-based (SE, h-swish; see padnas/space/macro.py)"""
)
@space_option("family", default="basic", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the space as JSON.")
@handle_errors
def space(family: str, as_json: bool) -> None:
    """Show a search space: size, signature and the ops each layer may take."""

    sp = get_space(family)
    if as_json:
        data = {
            **sp.to_dict(),
            "num_layers": sp.num_layers,
            "stem_chs": sp.stem_chs,
            "stem_act": sp.stem_act,
            "head_act": sp.head_act,
        }
        keys = ("index", "stage", "in_chs", "out_chs", "stride", "act")
        data["layers"] = [
            {**{k: getattr(s, k) for k in keys}, "ops": list(ops)}
            for s, ops in zip(sp.layers, sp.layer_ops, strict=True)
        ]
        click.echo(json.dumps(data, indent=1))
        return
    click.echo(f"space      {sp.family}")
    click.echo(f"size       {sp.size} (~{float(sp.size):.3g})")
    click.echo(f"signature  {sp.signature}")
    click.echo(f"layers     {sp.num_layers} searchable (stem {sp.stem_chs} channels)")
    click.echo("layer stage  in -> out stride  ops")
    for s, ops in zip(sp.layers, sp.layer_ops, strict=True):
        click.echo(
            f"{s.index:5d} {s.stage:5d} {s.in_chs:4d} -> {s.out_chs:<4d}{s.stride:5d}   "
            + " ".join(ops)
        )
