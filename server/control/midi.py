"""MIDI through mido + python-rtmidi: the only module that imports them.

For now: listing input ports per rtmidi API, for `ravemap devices`.
"""

from __future__ import annotations

import mido

# rtmidi's APIs as mido names them; ALSA / CoreMIDI / WinMM are each platform's default.
APIS = {
    "alsa": "mido.backends.rtmidi/LINUX_ALSA",
    "jack": "mido.backends.rtmidi/UNIX_JACK",
    "coremidi": "mido.backends.rtmidi/MACOSX_CORE",
    "winmm": "mido.backends.rtmidi/WINDOWS_MM",
}


def list_input_ports() -> dict[str, list[str]]:
    """Input port names for each API that works on this machine."""
    found: dict[str, list[str]] = {}
    for name, backend_name in APIS.items():
        try:
            backend = mido.Backend(backend_name, load=True)
            if backend_name.split("/")[1] not in backend.module.get_api_names():
                continue  # this rtmidi build has no such API on this platform
            found[name] = list(backend.get_input_names())
        except Exception as err:  # an API compiled in but unusable here (no ALSA sequencer...)
            found[name] = [f"(unavailable: {str(err).strip()[:80]})"]
    return found
