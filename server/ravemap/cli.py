"""The `ravemap` command: `serve`, `render`, `devices`, `send`, `status`, `train`, `plot`, `check`,
and the set-up commands `init`, `paths`, `layouts`.

Every error ravemap raises on purpose (`RavemapError`) ends as one line on stderr and a
distinct exit code: 2 config or command line, 3 model or loop file, 4 audio device,
5 mapping. Anything else is a bug and shows its traceback. `check` exits 1 when the machine
stalled a block for longer than the lead (a verdict, not an error).
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
from pathlib import Path

from ravemap import locations
from ravemap.config import Config, load_config, with_overrides
from ravemap.errors import ConfigError, RavemapError
from ravemap.userfiles import Written, version

log = logging.getLogger("ravemap")


def _latent(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give comma-separated numbers, e.g. 2,0,0,0") from None
    if not values:
        raise argparse.ArgumentTypeError("give at least one number, e.g. 2,0,0,0")
    return values


def _audio(text: str) -> str | int:
    return int(text) if text.strip().isdigit() else text


CONFIG_HELP = ("config file (default: $RAVEMAP_CONFIG, else <user config dir>/ravemap/config.yaml, else the "
               "checkout's or the packaged config.yaml; `ravemap paths` shows which)")


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, help=CONFIG_HELP)
    p.add_argument("--model", type=Path, help="RAVE / nn~ TorchScript export (overrides engine.model)")
    p.add_argument("--loop", type=Path, help="audio loop file (overrides engine.loop)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ravemap",
        description="Headless RAVE audio server steered by OSC and MIDI.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("--version", action="version", version=f"ravemap {version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser("serve", help="run the daemon: play the loop through the model")
    _add_common(serve)
    serve.add_argument("--audio", type=_audio, metavar="DEVICE|none",
                       help="output device name, index, or none (overrides audio.device)")
    serve.add_argument("--osc-port", type=int, metavar="N", help="UDP control port (overrides osc.port)")
    serve.add_argument("--feedback-port", type=int, metavar="N", help="feedback port (overrides osc.feedback_port)")
    serve.add_argument("--mapping", metavar="NAME", help="mapping to load and save (overrides mapping.name)")
    serve.add_argument("--web-port", type=int, metavar="N", help="TCP port of the control page (overrides web.port)")
    serve.add_argument("--qr", action="store_true", help="also print the control page's address as a QR code")
    serve.add_argument("--mappings-dir", type=Path, metavar="PATH",
                       help="folder of mappings (overrides paths.mappings_dir)")

    render = sub.add_parser("render", help="run the engine offline into a WAV file")
    render.add_argument("--out", type=Path, required=True, help="WAV file to write")
    render.add_argument("--seconds", type=float, required=True, help="length to render")
    _add_common(render)
    render.add_argument("--latent", type=_latent, metavar="F,F,...",
                        help="latent offsets, one per latent.dims entry, e.g. 2,0,0,0")
    render.add_argument("--no-transfer", action="store_true", help="play the dry loop (style transfer off)")

    sub.add_parser("devices", help="list audio devices and MIDI ports")

    send = sub.add_parser("send", help="send one OSC message to a running daemon")
    send.add_argument("address", help="OSC address, e.g. /ravemap/xy")
    send.add_argument("args", nargs="*", help="arguments: 3 is an int, 0.5 a float, s:3 or text a string")
    _add_target(send)
    send.add_argument("--wait", type=float, default=0.0, metavar="S",
                      help="print replies to this port for S seconds (status/ping reply to it)")

    status = sub.add_parser("status", help="print a running daemon's state")
    _add_target(status)

    train = sub.add_parser("train", help="train a saved mapping offline, with a progress bar")
    train.add_argument("name", help="mapping name (mappings/<name>.json)")
    train.add_argument("--epochs", type=int, help="most epochs (default: the mapping's setting)")
    _add_mappings(train)

    plot = sub.add_parser("plot", help="draw a mapping: examples and the learned field per latent dim")
    plot.add_argument("name", help="mapping name (mappings/<name>.json)")
    plot.add_argument("--out", type=Path, required=True, help="PNG file to write")
    _add_mappings(plot)

    check = sub.add_parser("check", help="does this machine stall the engine's work for longer than its lead?")
    check.add_argument("--seconds", type=float, default=60.0, help="how long to check (default 60)")
    check.add_argument("--config", type=Path, help=CONFIG_HELP)
    check.add_argument("--model", type=Path, help="RAVE / nn~ TorchScript export (overrides engine.model)")
    check.add_argument("--block", type=int, metavar="N",
                       help="samples per block, a multiple of the model's ratio (default: the smallest that "
                            "fills a period)")
    check.add_argument("--period", type=int, default=256, metavar="N",
                       help="the sound card's period in frames (default 256)")
    check.add_argument("--lead", type=int, metavar="FRAMES",
                       help="frames the engine keeps ready (default: one block and one period)")

    init = sub.add_parser("init", help="write a commented config and models/, loops/, mappings/ folders to edit")
    init.add_argument("dir", nargs="?", type=Path, default=Path("."), metavar="DIR",
                      help="folder to set up (default: the current folder); files already there are kept")

    paths = sub.add_parser("paths", help="print where the config, model, loop, models, loops and mappings are")
    paths.add_argument("--config", type=Path, help=CONFIG_HELP)

    layouts = sub.add_parser("layouts", help="copy the TouchOSC, Pure Data and Max layouts into a folder")
    layouts.add_argument("--out", type=Path, metavar="DIR",
                         help="folder to copy them into (files already there are kept); without it, say where they are")
    return parser


def _add_target(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1", help="daemon host (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=None, help="daemon control port (default: osc.port of the config)")
    p.add_argument("--config", type=Path, help="config file to read osc.port from (default: as for serve)")


def _add_mappings(p: argparse.ArgumentParser) -> None:
    p.add_argument("--mappings-dir", type=Path, help="folder of mappings (default: paths.mappings_dir)")
    p.add_argument("--config", type=Path, help="config file to read paths.mappings_dir from (default: as for serve)")


def _config(args: argparse.Namespace) -> Config:
    config = load_config(args.config)
    cwd = Path.cwd()
    return with_overrides(
        config,
        engine__model=(cwd / args.model) if getattr(args, "model", None) else None,
        engine__loop=(cwd / args.loop) if getattr(args, "loop", None) else None,
        audio__device=getattr(args, "audio", None),
        osc__port=getattr(args, "osc_port", None),
        osc__feedback_port=getattr(args, "feedback_port", None),
        web__port=getattr(args, "web_port", None),
        mapping__name=getattr(args, "mapping", None),
        paths__mappings_dir=(cwd / args.mappings_dir) if getattr(args, "mappings_dir", None) else None,
    )


def _setup_logging(config: Config | None, verbose: bool) -> None:
    level = logging.DEBUG if verbose else getattr(logging, (config.log.level if config else "info").upper())
    logging.basicConfig(level=level, format="%(asctime)s %(name)s %(levelname)s: %(message)s",
                        stream=sys.stderr, force=True)


def cmd_serve(args: argparse.Namespace) -> int:
    config = _config(args)
    _setup_logging(config, args.verbose)
    from ravemap.daemon import serve

    return serve(config, qr=args.qr)


def cmd_render(args: argparse.Namespace) -> int:
    config = _config(args)
    _setup_logging(config, args.verbose)
    from ravemap.render import render

    result = render(config, args.out, args.seconds, latent=args.latent,
                    transfer=False if args.no_transfer else None)
    print(
        f"wrote {result.path}: {result.seconds:.2f} s, {result.sr} Hz, {result.channels} ch, "
        f"peak {result.peak:.3f}, {result.speed:.1f}x realtime"
    )
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    config = _config(args)
    _setup_logging(config, args.verbose)
    from ravemap.audio.engine import configure_torch
    from ravemap.audio.machine_check import check, default_block, model_block, tick_frames
    from ravemap.audio.model import load_model

    if not 0 < args.seconds <= 3600:
        raise ConfigError(f"--seconds {args.seconds:g}: give a duration above 0 and at most 3600")
    if args.period <= 0:
        raise ConfigError(f"--period {args.period}: give the sound card's period in frames, above 0")
    configure_torch(config.engine.torch_threads)  # the engine's torch threads, as `serve` plays
    model = load_model(config.engine.model)
    ratio, sr = model.info.ratio, model.info.sr
    block = args.block if args.block is not None else default_block(ratio, args.period)
    if block <= 0 or block % ratio:
        raise ConfigError(f"--block {block}: {model.info.path.name} needs a multiple of its ratio {ratio}, "
                          f"e.g. {default_block(ratio, args.period)}")
    lead = args.lead if args.lead is not None else block + args.period
    if lead <= 0:
        raise ConfigError(f"--lead {lead}: give the frames kept ready, above 0")
    print(f"ravemap check: {model.info.describe()}")
    tick = tick_frames(block, args.period)
    print(f"ravemap check: blocks of {block} samples, rendered every {tick} frames ({1000 * tick / sr:.1f} ms) "
          f"for {args.seconds:g} s, {args.period}-frame periods; lead {lead} frames ({1000 * lead / sr:.1f} ms)",
          flush=True)
    result = check(model_block(model, block, args.period), args.seconds, tick / sr, lead / sr)
    print(f"ravemap check: {result.describe()}")
    if result.missed == 0:
        print("ravemap check: this machine kept every block inside the lead")
        return 0
    worst_s = result.late_ms[3] / 1000.0
    ahead = math.floor(worst_s * sr / block) + 1
    print(f"ravemap check: this machine stopped the engine's work for up to {result.late_ms[3]:.1f} ms: expect "
          f"underruns at a {1000 * lead / sr:.1f} ms lead. engine.latency: auto adds a period to the lead after "
          f"each; engine.ahead_blocks: {ahead} (block_size {block}) would cover the worst, at "
          f"{1000 * ahead * block / sr:.1f} ms of lead")
    return 1


def cmd_devices(args: argparse.Namespace) -> int:
    _setup_logging(None, args.verbose)
    from ravemap.audio import stream
    from ravemap.control import midi

    print("Audio devices (use the index or a part of the name as audio.device / --audio):")
    try:
        devices = stream.list_devices()
    except RavemapError as err:
        print(f"  {err}")
        devices = []
    for d in devices:
        print(f"  {d.index:3d}  {d.name} [{d.hostapi}]  in {d.max_input_channels}, "
              f"out {d.max_output_channels}, {d.default_samplerate:.0f} Hz")
    if not devices:
        print("  none found: use --audio none, or start a sound server (JACK, PipeWire, PulseAudio)")
    print("MIDI input ports:")
    for api, ports in midi.list_input_ports().items():
        shown = ", ".join(ports) if ports else "none"
        print(f"  {api}: {shown}")
    return 0


def _client(args: argparse.Namespace):
    from ravemap.control.client import Client

    port = args.port if args.port is not None else load_config(args.config).osc.port
    return Client(args.host, port)


def cmd_send(args: argparse.Namespace) -> int:
    from ravemap.control.client import parse_arg

    client = _client(args)
    values = [parse_arg(a) for a in args.args]
    if args.address in ("/ravemap/status", "/ravemap/ping") and not values and args.wait > 0:
        values = [client.reply_port]
    try:
        client.send(args.address, *values)
    except ValueError as err:
        raise ConfigError(str(err)) from None
    for address, reply in client.replies(args.wait):
        print(address, *reply)
    client.close()
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    import json

    client = _client(args)
    try:
        state = client.status()
    finally:
        client.close()
    print(json.dumps(state, indent=2, sort_keys=True))
    return 0


def _mappings_dir(args: argparse.Namespace) -> Path:
    if args.mappings_dir is not None:
        return args.mappings_dir
    return load_config(args.config).paths.mappings_dir


def cmd_train(args: argparse.Namespace) -> int:
    from ravemap.offline import train_mapping

    result = train_mapping(_mappings_dir(args), args.name, epochs=args.epochs)
    print(f"trained {args.name!r}: {result.examples} examples, loss {result.loss:.5f}, {result.epochs} epochs "
          f"in {result.seconds:.2f} s ({result.reason})")
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    from ravemap.mapping.store import load_mapping
    from ravemap.offline import describe_names, plot_mapping

    path = plot_mapping(_mappings_dir(args), args.name, args.out)
    print(f"wrote {path} ({describe_names(load_mapping(_mappings_dir(args), args.name))})")
    return 0


def cmd_init(args: argparse.Namespace) -> int:
    from ravemap.userfiles import init

    written = init(args.dir)
    config = (args.dir / locations.CONFIG_NAME).expanduser().absolute()
    if not written.made:
        print(f"ravemap init: nothing changed: {config} and its folders {', '.join(locations.FOLDERS)} "
              "are already there (kept as they are)")
        return 0
    _say_written("init", written)
    print(f"ravemap init: edit {config}, then: ravemap serve --config {config}")
    return 0


def cmd_paths(args: argparse.Namespace) -> int:
    source = locations.find_config(args.config)
    config = load_config(source.path)
    root = locations.checkout()
    rows = [
        ("running", f"from the checkout {root}" if root is not None else f"installed, in {locations.PACKAGE}"),
        ("config", f"{source.path}  ({source.why})"),
        ("model", f"{config.engine.model}  (engine.model)"),
        ("loop", f"{config.engine.loop}  (engine.loop)"),
        ("models", f"{_folder(config.paths.models_dir)}  (paths.models_dir: /ravemap/model names)"),
        ("loops", f"{_folder(config.paths.loops_dir)}  (paths.loops_dir: /ravemap/loop names)"),
        ("mappings", f"{_folder(config.paths.mappings_dir)}  (paths.mappings_dir: mappings are saved here)"),
        ("layouts", f"{locations.layouts()}  (ravemap layouts --out DIR copies them)"),
    ]
    user = locations.user_config_file()
    lookup = (f"--config, ${locations.ENV_CONFIG}, {user}{'' if user.is_file() else ' (none)'}, "
              + ("the checkout's config.yaml" if root is not None else "the packaged default"))
    rows.insert(2, ("lookup", lookup))
    for label, text in rows:
        print(f"{label:<9} {text}")
    return 0


def _folder(path: Path) -> str:
    return str(path) if path.is_dir() else f"{path} (not there yet)"


def cmd_layouts(args: argparse.Namespace) -> int:
    from ravemap.userfiles import copy_layouts, layout_files

    if args.out is None:
        print(f"The controller layouts are in {locations.layouts()}:")
        for name, files in layout_files().items():
            print(f"  {name}/: {', '.join(str(f) for f in files)}")
        print("Copy them to a folder of yours with: ravemap layouts --out DIR")
        return 0
    written = copy_layouts(args.out)
    out = args.out.expanduser().absolute()
    if not written.made:
        print(f"ravemap layouts: nothing changed: all {len(written.kept)} files are already in {out} "
              "(kept as they are)")
        return 0
    _say_written("layouts", written)
    return 0


def _say_written(command: str, written: Written) -> None:
    """A line for each file or folder made, then each kept as it was (folders end in /)."""
    for verb, paths, note in (("made", written.made, ""), ("kept", written.kept, " (already there)")):
        for path in paths:
            print(f"ravemap {command}: {verb} {path}{'/' if path.is_dir() else ''}{note}")


COMMANDS = {"serve": cmd_serve, "render": cmd_render, "devices": cmd_devices, "send": cmd_send,
            "status": cmd_status, "train": cmd_train, "plot": cmd_plot, "check": cmd_check, "init": cmd_init,
            "paths": cmd_paths, "layouts": cmd_layouts}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except ConfigError as err:
        print(f"ravemap: config error: {err}", file=sys.stderr)
        return err.exit_code
    except RavemapError as err:
        print(f"ravemap: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        return 130
