{
	"patcher": {
		"fileversion": 1,
		"appversion": {
			"major": 8,
			"minor": 5,
			"revision": 0,
			"architecture": "x64",
			"modernui": 1
		},
		"classnamespace": "box",
		"rect": [
			80.0,
			80.0,
			980.0,
			720.0
		],
		"bglocked": 0,
		"openinpresentation": 0,
		"default_fontsize": 12.0,
		"default_fontface": 0,
		"default_fontname": "Arial",
		"gridonopen": 1,
		"gridsize": [
			15.0,
			15.0
		],
		"gridsnaponopen": 1,
		"objectsnaponopen": 1,
		"statusbarvisible": 2,
		"toolbarvisible": 1,
		"boxanimatetime": 200,
		"enablehscroll": 1,
		"enablevscroll": 1,
		"devicewidth": 0.0,
		"description": "",
		"digest": "",
		"tags": "",
		"style": "",
		"subpatcher_template": "",
		"assistshowspatchername": 0,
		"boxes": [
			{
				"box": {
					"maxclass": "comment",
					"text": "ravemap: play a RAVE model from Max. Start the daemon (ravemap serve, or ./run in the repository), then play here. Sends to 127.0.0.1 port 8000 (udpsend), listens for the daemon's feedback on port 9000 (udpreceive). Another machine: change the address in udpsend.",
					"numinlets": 1,
					"numoutlets": 0,
					"patching_rect": [
						20,
						10,
						900,
						60
					],
					"id": "obj-1"
				}
			},
			{
				"box": {
					"maxclass": "comment",
					"text": "XY: the input vector a mapping learns from (0..1)",
					"numinlets": 1,
					"numoutlets": 0,
					"patching_rect": [
						20,
						70,
						300,
						40
					],
					"id": "obj-2"
				}
			},
			{
				"box": {
					"maxclass": "slider",
					"numinlets": 1,
					"numoutlets": 1,
					"outlettype": [
						""
					],
					"floatoutput": 1,
					"min": 0,
					"size": 1.0,
					"parameter_enable": 0,
					"patching_rect": [
						20,
						95,
						240,
						22
					],
					"id": "obj-3"
				}
			},
			{
				"box": {
					"maxclass": "slider",
					"numinlets": 1,
					"numoutlets": 1,
					"outlettype": [
						""
					],
					"floatoutput": 1,
					"min": 0,
					"size": 1.0,
					"parameter_enable": 0,
					"patching_rect": [
						20,
						125,
						240,
						22
					],
					"id": "obj-4"
				}
			},
			{
				"box": {
					"maxclass": "comment",
					"text": "x",
					"numinlets": 1,
					"numoutlets": 0,
					"patching_rect": [
						265,
						95,
						30,
						20
					],
					"id": "obj-5"
				}
			},
			{
				"box": {
					"maxclass": "comment",
					"text": "y",
					"numinlets": 1,
					"numoutlets": 0,
					"patching_rect": [
						265,
						125,
						30,
						20
					],
					"id": "obj-6"
				}
			},
			{
				"box": {
					"maxclass": "newobj",
					"text": "t b f",
					"numinlets": 1,
					"numoutlets": 2,
					"outlettype": [
						"bang",
						"float"
					],
					"patching_rect": [
						120,
						160,
						40,
						22
					],
					"id": "obj-7"
				}
			},
			{
				"box": {
					"maxclass": "newobj",
					"text": "pack f f",
					"numinlets": 2,
					"numoutlets": 1,
					"outlettype": [
						""
					],
					"patching_rect": [
						20,
						190,
						64,
						22
					],
					"id": "obj-8"
				}
			},
			{
				"box": {
					"maxclass": "newobj",
					"text": "prepend /ravemap/xy",
					"numinlets": 1,
					"numoutlets": 1,
					"outlettype": [
						""
					],
					"patching_rect": [
						20,
						220,
						140,
						22
					],
					"id": "obj-9"
				}
			},
			{
				"box": {
					"maxclass": "newobj",
					"text": "udpsend 127.0.0.1 8000",
					"numinlets": 1,
					"numoutlets": 0,
					"outlettype": [],
					"patching_rect": [
						20,
						560,
						170,
						22
					],
					"id": "obj-10"
				}
			},
			{
				"box": {
					"maxclass": "comment",
					"text": "latent offsets (-3..3): they move by themselves in run mode",
					"numinlets": 1,
					"numoutlets": 0,
					"patching_rect": [
						330,
						70,
						360,
						40
					],
					"id": "obj-11"
				}
			},
			{
				"box": {
					"maxclass": "slider",
					"numinlets": 1,
					"numoutlets": 1,
					"outlettype": [
						""
					],
					"floatoutput": 1,
					"min": -3,
					"size": 6.0,
					"parameter_enable": 0,
					"patching_rect": [
						330,
						95,
						240,
						22
					],
					"id": "obj-12"
				}
			},
			{
				"box": {
					"maxclass": "comment",
					"text": "latent 0",
					"numinlets": 1,
					"numoutlets": 0,
					"patching_rect": [
						575,
						95,
						70,
						20
					],
					"id": "obj-13"
				}
			},
			{
				"box": {
					"maxclass": "newobj",
					"text": "prepend /ravemap/latent/0",
					"numinlets": 1,
					"numoutlets": 1,
					"outlettype": [
						""
					],
					"patching_rect": [
						330,
						230,
						145,
						22
					],
					"id": "obj-14"
				}
			},
			{
				"box": {
					"maxclass": "slider",
					"numinlets": 1,
					"numoutlets": 1,
					"outlettype": [
						""
					],
					"floatoutput": 1,
					"min": -3,
					"size": 6.0,
					"parameter_enable": 0,
					"patching_rect": [
						330,
						125,
						240,
						22
					],
					"id": "obj-15"
				}
			},
			{
				"box": {
					"maxclass": "comment",
					"text": "latent 1",
					"numinlets": 1,
					"numoutlets": 0,
					"patching_rect": [
						575,
						125,
						70,
						20
					],
					"id": "obj-16"
				}
			},
			{
				"box": {
					"maxclass": "newobj",
					"text": "prepend /ravemap/latent/1",
					"numinlets": 1,
					"numoutlets": 1,
					"outlettype": [
						""
					],
					"patching_rect": [
						480,
						230,
						145,
						22
					],
					"id": "obj-17"
				}
			},
			{
				"box": {
					"maxclass": "slider",
					"numinlets": 1,
					"numoutlets": 1,
					"outlettype": [
						""
					],
					"floatoutput": 1,
					"min": -3,
					"size": 6.0,
					"parameter_enable": 0,
					"patching_rect": [
						330,
						155,
						240,
						22
					],
					"id": "obj-18"
				}
			},
			{
				"box": {
					"maxclass": "comment",
					"text": "latent 2",
					"numinlets": 1,
					"numoutlets": 0,
					"patching_rect": [
						575,
						155,
						70,
						20
					],
					"id": "obj-19"
				}
			},
			{
				"box": {
					"maxclass": "newobj",
					"text": "prepend /ravemap/latent/2",
					"numinlets": 1,
					"numoutlets": 1,
					"outlettype": [
						""
					],
					"patching_rect": [
						330,
						260,
						145,
						22
					],
					"id": "obj-20"
				}
			},
			{
				"box": {
					"maxclass": "slider",
					"numinlets": 1,
					"numoutlets": 1,
					"outlettype": [
						""
					],
					"floatoutput": 1,
					"min": -3,
					"size": 6.0,
					"parameter_enable": 0,
					"patching_rect": [
						330,
						185,
						240,
						22
					],
					"id": "obj-21"
				}
			},
			{
				"box": {
					"maxclass": "comment",
					"text": "latent 3",
					"numinlets": 1,
					"numoutlets": 0,
					"patching_rect": [
						575,
						185,
						70,
						20
					],
					"id": "obj-22"
				}
			},
			{
				"box": {
					"maxclass": "newobj",
					"text": "prepend /ravemap/latent/3",
					"numinlets": 1,
					"numoutlets": 1,
					"outlettype": [
						""
					],
					"patching_rect": [
						480,
						260,
						145,
						22
					],
					"id": "obj-23"
				}
			},
			{
				"box": {
					"maxclass": "comment",
					"text": "teach: set the latent sliders, switch record on, move XY; then train and run",
					"numinlets": 1,
					"numoutlets": 0,
					"patching_rect": [
						20,
						270,
						520,
						40
					],
					"id": "obj-24"
				}
			},
			{
				"box": {
					"maxclass": "toggle",
					"numinlets": 1,
					"numoutlets": 1,
					"outlettype": [
						"int"
					],
					"parameter_enable": 0,
					"patching_rect": [
						20,
						300,
						24,
						24
					],
					"id": "obj-25"
				}
			},
			{
				"box": {
					"maxclass": "comment",
					"text": "record",
					"numinlets": 1,
					"numoutlets": 0,
					"patching_rect": [
						48,
						301,
						60,
						20
					],
					"id": "obj-26"
				}
			},
			{
				"box": {
					"maxclass": "toggle",
					"numinlets": 1,
					"numoutlets": 1,
					"outlettype": [
						"int"
					],
					"parameter_enable": 0,
					"patching_rect": [
						20,
						340,
						24,
						24
					],
					"id": "obj-27"
				}
			},
			{
				"box": {
					"maxclass": "comment",
					"text": "run",
					"numinlets": 1,
					"numoutlets": 0,
					"patching_rect": [
						48,
						341,
						60,
						20
					],
					"id": "obj-28"
				}
			},
			{
				"box": {
					"maxclass": "newobj",
					"text": "prepend /ravemap/record",
					"numinlets": 1,
					"numoutlets": 1,
					"outlettype": [
						""
					],
					"patching_rect": [
						20,
						380,
						160,
						22
					],
					"id": "obj-29"
				}
			},
			{
				"box": {
					"maxclass": "newobj",
					"text": "prepend /ravemap/run",
					"numinlets": 1,
					"numoutlets": 1,
					"outlettype": [
						""
					],
					"patching_rect": [
						190,
						380,
						140,
						22
					],
					"id": "obj-30"
				}
			},
			{
				"box": {
					"maxclass": "message",
					"text": "/ravemap/train",
					"numinlets": 2,
					"numoutlets": 1,
					"outlettype": [
						""
					],
					"patching_rect": [
						130,
						300,
						100,
						22
					],
					"id": "obj-31"
				}
			},
			{
				"box": {
					"maxclass": "message",
					"text": "/ravemap/examples/clear",
					"numinlets": 2,
					"numoutlets": 1,
					"outlettype": [
						""
					],
					"patching_rect": [
						240,
						300,
						160,
						22
					],
					"id": "obj-32"
				}
			},
			{
				"box": {
					"maxclass": "message",
					"text": "/ravemap/status",
					"numinlets": 2,
					"numoutlets": 1,
					"outlettype": [
						""
					],
					"patching_rect": [
						130,
						340,
						110,
						22
					],
					"id": "obj-33"
				}
			},
			{
				"box": {
					"maxclass": "comment",
					"text": "<- sync: ask for the current state",
					"numinlets": 1,
					"numoutlets": 0,
					"patching_rect": [
						250,
						341,
						230,
						40
					],
					"id": "obj-34"
				}
			},
			{
				"box": {
					"maxclass": "newobj",
					"text": "loadbang",
					"numinlets": 1,
					"numoutlets": 1,
					"outlettype": [
						"bang"
					],
					"patching_rect": [
						130,
						420,
						64,
						22
					],
					"id": "obj-35"
				}
			},
			{
				"box": {
					"maxclass": "comment",
					"text": "feedback from the daemon: 'set' shows a value without sending it back",
					"numinlets": 1,
					"numoutlets": 0,
					"patching_rect": [
						520,
						270,
						420,
						40
					],
					"id": "obj-36"
				}
			},
			{
				"box": {
					"maxclass": "newobj",
					"text": "udpreceive 9000",
					"numinlets": 1,
					"numoutlets": 1,
					"outlettype": [
						""
					],
					"patching_rect": [
						520,
						300,
						120,
						22
					],
					"id": "obj-37"
				}
			},
			{
				"box": {
					"maxclass": "newobj",
					"text": "route /ravemap/latent /ravemap/record /ravemap/run /ravemap/examples /ravemap/train/progress /ravemap/train/done /ravemap/error",
					"numinlets": 2,
					"numoutlets": 8,
					"outlettype": [
						"",
						"",
						"",
						"",
						"",
						"",
						"",
						""
					],
					"patching_rect": [
						520,
						330,
						440,
						22
					],
					"id": "obj-38"
				}
			},
			{
				"box": {
					"maxclass": "newobj",
					"text": "unpack f f f f",
					"numinlets": 1,
					"numoutlets": 4,
					"outlettype": [
						"float",
						"float",
						"float",
						"float"
					],
					"patching_rect": [
						520,
						370,
						120,
						22
					],
					"id": "obj-39"
				}
			},
			{
				"box": {
					"maxclass": "message",
					"text": "set $1",
					"numinlets": 2,
					"numoutlets": 1,
					"outlettype": [
						""
					],
					"patching_rect": [
						520,
						400,
						45,
						22
					],
					"id": "obj-40"
				}
			},
			{
				"box": {
					"maxclass": "message",
					"text": "set $1",
					"numinlets": 2,
					"numoutlets": 1,
					"outlettype": [
						""
					],
					"patching_rect": [
						570,
						400,
						45,
						22
					],
					"id": "obj-41"
				}
			},
			{
				"box": {
					"maxclass": "message",
					"text": "set $1",
					"numinlets": 2,
					"numoutlets": 1,
					"outlettype": [
						""
					],
					"patching_rect": [
						620,
						400,
						45,
						22
					],
					"id": "obj-42"
				}
			},
			{
				"box": {
					"maxclass": "message",
					"text": "set $1",
					"numinlets": 2,
					"numoutlets": 1,
					"outlettype": [
						""
					],
					"patching_rect": [
						670,
						400,
						45,
						22
					],
					"id": "obj-43"
				}
			},
			{
				"box": {
					"maxclass": "message",
					"text": "set $1",
					"numinlets": 2,
					"numoutlets": 1,
					"outlettype": [
						""
					],
					"patching_rect": [
						730,
						370,
						45,
						22
					],
					"id": "obj-44"
				}
			},
			{
				"box": {
					"maxclass": "message",
					"text": "set $1",
					"numinlets": 2,
					"numoutlets": 1,
					"outlettype": [
						""
					],
					"patching_rect": [
						785,
						370,
						45,
						22
					],
					"id": "obj-45"
				}
			},
			{
				"box": {
					"maxclass": "number",
					"numinlets": 1,
					"numoutlets": 2,
					"outlettype": [
						"",
						"bang"
					],
					"parameter_enable": 0,
					"patching_rect": [
						850,
						400,
						60,
						22
					],
					"id": "obj-46"
				}
			},
			{
				"box": {
					"maxclass": "comment",
					"text": "examples",
					"numinlets": 1,
					"numoutlets": 0,
					"patching_rect": [
						915,
						400,
						70,
						20
					],
					"id": "obj-47"
				}
			},
			{
				"box": {
					"maxclass": "message",
					"text": "set $1",
					"numinlets": 2,
					"numoutlets": 1,
					"outlettype": [
						""
					],
					"patching_rect": [
						850,
						370,
						45,
						22
					],
					"id": "obj-48"
				}
			},
			{
				"box": {
					"maxclass": "newobj",
					"text": "unpack f f",
					"numinlets": 1,
					"numoutlets": 2,
					"outlettype": [
						"float",
						"float"
					],
					"patching_rect": [
						520,
						450,
						80,
						22
					],
					"id": "obj-49"
				}
			},
			{
				"box": {
					"maxclass": "flonum",
					"numinlets": 1,
					"numoutlets": 2,
					"outlettype": [
						"",
						"bang"
					],
					"parameter_enable": 0,
					"patching_rect": [
						520,
						480,
						60,
						22
					],
					"id": "obj-50"
				}
			},
			{
				"box": {
					"maxclass": "comment",
					"text": "training progress (0..1)",
					"numinlets": 1,
					"numoutlets": 0,
					"patching_rect": [
						585,
						480,
						160,
						40
					],
					"id": "obj-51"
				}
			},
			{
				"box": {
					"maxclass": "flonum",
					"numinlets": 1,
					"numoutlets": 2,
					"outlettype": [
						"",
						"bang"
					],
					"parameter_enable": 0,
					"patching_rect": [
						520,
						510,
						90,
						22
					],
					"id": "obj-52"
				}
			},
			{
				"box": {
					"maxclass": "comment",
					"text": "loss",
					"numinlets": 1,
					"numoutlets": 0,
					"patching_rect": [
						615,
						510,
						50,
						20
					],
					"id": "obj-53"
				}
			},
			{
				"box": {
					"maxclass": "newobj",
					"text": "unpack f i f",
					"numinlets": 1,
					"numoutlets": 3,
					"outlettype": [
						"float",
						"int",
						"float"
					],
					"patching_rect": [
						700,
						450,
						90,
						22
					],
					"id": "obj-54"
				}
			},
			{
				"box": {
					"maxclass": "newobj",
					"text": "print ravemap-error",
					"numinlets": 1,
					"numoutlets": 0,
					"outlettype": [],
					"patching_rect": [
						800,
						450,
						130,
						22
					],
					"id": "obj-55"
				}
			},
			{
				"box": {
					"maxclass": "newobj",
					"text": "print ravemap",
					"numinlets": 1,
					"numoutlets": 0,
					"outlettype": [],
					"patching_rect": [
						800,
						480,
						100,
						22
					],
					"id": "obj-56"
				}
			},
			{
				"box": {
					"maxclass": "comment",
					"text": "performer: the chain (mix, jitter, input gain, limiter, autopilot, a scale per latent dim), into the same udpsend",
					"numinlets": 1,
					"numoutlets": 0,
					"patching_rect": [
						20,
						610,
						620,
						20
					],
					"id": "obj-57"
				}
			},
			{
				"box": {
					"maxclass": "slider",
					"numinlets": 1,
					"numoutlets": 1,
					"outlettype": [
						""
					],
					"floatoutput": 1,
					"min": 0,
					"size": 1,
					"parameter_enable": 0,
					"patching_rect": [
						20,
						640,
						200,
						22
					],
					"id": "obj-58"
				}
			},
			{
				"box": {
					"maxclass": "comment",
					"text": "mix (dry..wet)",
					"numinlets": 1,
					"numoutlets": 0,
					"patching_rect": [
						225,
						640,
						130,
						20
					],
					"id": "obj-59"
				}
			},
			{
				"box": {
					"maxclass": "newobj",
					"text": "prepend /ravemap/mix",
					"numinlets": 1,
					"numoutlets": 1,
					"outlettype": [
						""
					],
					"patching_rect": [
						360,
						640,
						170,
						22
					],
					"id": "obj-60"
				}
			},
			{
				"box": {
					"maxclass": "slider",
					"numinlets": 1,
					"numoutlets": 1,
					"outlettype": [
						""
					],
					"floatoutput": 1,
					"min": 0,
					"size": 3,
					"parameter_enable": 0,
					"patching_rect": [
						20,
						670,
						200,
						22
					],
					"id": "obj-61"
				}
			},
			{
				"box": {
					"maxclass": "comment",
					"text": "jitter (0..3)",
					"numinlets": 1,
					"numoutlets": 0,
					"patching_rect": [
						225,
						670,
						130,
						20
					],
					"id": "obj-62"
				}
			},
			{
				"box": {
					"maxclass": "newobj",
					"text": "prepend /ravemap/jitter",
					"numinlets": 1,
					"numoutlets": 1,
					"outlettype": [
						""
					],
					"patching_rect": [
						360,
						670,
						170,
						22
					],
					"id": "obj-63"
				}
			},
			{
				"box": {
					"maxclass": "slider",
					"numinlets": 1,
					"numoutlets": 1,
					"outlettype": [
						""
					],
					"floatoutput": 1,
					"min": -60,
					"size": 84,
					"parameter_enable": 0,
					"patching_rect": [
						20,
						700,
						200,
						22
					],
					"id": "obj-64"
				}
			},
			{
				"box": {
					"maxclass": "comment",
					"text": "input gain (dB)",
					"numinlets": 1,
					"numoutlets": 0,
					"patching_rect": [
						225,
						700,
						130,
						20
					],
					"id": "obj-65"
				}
			},
			{
				"box": {
					"maxclass": "newobj",
					"text": "prepend /ravemap/input/gain",
					"numinlets": 1,
					"numoutlets": 1,
					"outlettype": [
						""
					],
					"patching_rect": [
						360,
						700,
						170,
						22
					],
					"id": "obj-66"
				}
			},
			{
				"box": {
					"maxclass": "slider",
					"numinlets": 1,
					"numoutlets": 1,
					"outlettype": [
						""
					],
					"floatoutput": 1,
					"min": -60,
					"size": 60,
					"parameter_enable": 0,
					"patching_rect": [
						20,
						730,
						200,
						22
					],
					"id": "obj-67"
				}
			},
			{
				"box": {
					"maxclass": "comment",
					"text": "limit (dBFS)",
					"numinlets": 1,
					"numoutlets": 0,
					"patching_rect": [
						225,
						730,
						130,
						20
					],
					"id": "obj-68"
				}
			},
			{
				"box": {
					"maxclass": "newobj",
					"text": "prepend /ravemap/limit",
					"numinlets": 1,
					"numoutlets": 1,
					"outlettype": [
						""
					],
					"patching_rect": [
						360,
						730,
						170,
						22
					],
					"id": "obj-69"
				}
			},
			{
				"box": {
					"maxclass": "message",
					"text": "/ravemap/limit/off",
					"numinlets": 2,
					"numoutlets": 1,
					"outlettype": [
						""
					],
					"patching_rect": [
						540,
						730,
						120,
						22
					],
					"id": "obj-70"
				}
			},
			{
				"box": {
					"maxclass": "slider",
					"numinlets": 1,
					"numoutlets": 1,
					"outlettype": [
						""
					],
					"floatoutput": 1,
					"min": 0,
					"size": 1,
					"parameter_enable": 0,
					"patching_rect": [
						20,
						760,
						200,
						22
					],
					"id": "obj-71"
				}
			},
			{
				"box": {
					"maxclass": "comment",
					"text": "autopilot",
					"numinlets": 1,
					"numoutlets": 0,
					"patching_rect": [
						225,
						760,
						130,
						20
					],
					"id": "obj-72"
				}
			},
			{
				"box": {
					"maxclass": "newobj",
					"text": "prepend /ravemap/autopilot",
					"numinlets": 1,
					"numoutlets": 1,
					"outlettype": [
						""
					],
					"patching_rect": [
						360,
						760,
						170,
						22
					],
					"id": "obj-73"
				}
			},
			{
				"box": {
					"maxclass": "slider",
					"numinlets": 1,
					"numoutlets": 1,
					"outlettype": [
						""
					],
					"floatoutput": 1,
					"min": 0.01,
					"size": 9.99,
					"parameter_enable": 0,
					"patching_rect": [
						20,
						790,
						200,
						22
					],
					"id": "obj-74"
				}
			},
			{
				"box": {
					"maxclass": "comment",
					"text": "autopilot rate (Hz)",
					"numinlets": 1,
					"numoutlets": 0,
					"patching_rect": [
						225,
						790,
						130,
						20
					],
					"id": "obj-75"
				}
			},
			{
				"box": {
					"maxclass": "newobj",
					"text": "prepend /ravemap/autopilot/rate",
					"numinlets": 1,
					"numoutlets": 1,
					"outlettype": [
						""
					],
					"patching_rect": [
						360,
						790,
						170,
						22
					],
					"id": "obj-76"
				}
			},
			{
				"box": {
					"maxclass": "comment",
					"text": "scale of each latent dim (-4..4; 8 dims: the default model)",
					"numinlets": 1,
					"numoutlets": 0,
					"patching_rect": [
						20,
						825,
						400,
						20
					],
					"id": "obj-77"
				}
			},
			{
				"box": {
					"maxclass": "slider",
					"numinlets": 1,
					"numoutlets": 1,
					"outlettype": [
						""
					],
					"floatoutput": 1,
					"min": -4,
					"size": 8,
					"parameter_enable": 0,
					"patching_rect": [
						20,
						850,
						200,
						22
					],
					"id": "obj-78"
				}
			},
			{
				"box": {
					"maxclass": "comment",
					"text": "scale 0",
					"numinlets": 1,
					"numoutlets": 0,
					"patching_rect": [
						225,
						850,
						60,
						20
					],
					"id": "obj-79"
				}
			},
			{
				"box": {
					"maxclass": "newobj",
					"text": "prepend /ravemap/scale/0",
					"numinlets": 1,
					"numoutlets": 1,
					"outlettype": [
						""
					],
					"patching_rect": [
						290,
						850,
						150,
						22
					],
					"id": "obj-80"
				}
			},
			{
				"box": {
					"maxclass": "slider",
					"numinlets": 1,
					"numoutlets": 1,
					"outlettype": [
						""
					],
					"floatoutput": 1,
					"min": -4,
					"size": 8,
					"parameter_enable": 0,
					"patching_rect": [
						20,
						880,
						200,
						22
					],
					"id": "obj-81"
				}
			},
			{
				"box": {
					"maxclass": "comment",
					"text": "scale 1",
					"numinlets": 1,
					"numoutlets": 0,
					"patching_rect": [
						225,
						880,
						60,
						20
					],
					"id": "obj-82"
				}
			},
			{
				"box": {
					"maxclass": "newobj",
					"text": "prepend /ravemap/scale/1",
					"numinlets": 1,
					"numoutlets": 1,
					"outlettype": [
						""
					],
					"patching_rect": [
						290,
						880,
						150,
						22
					],
					"id": "obj-83"
				}
			},
			{
				"box": {
					"maxclass": "slider",
					"numinlets": 1,
					"numoutlets": 1,
					"outlettype": [
						""
					],
					"floatoutput": 1,
					"min": -4,
					"size": 8,
					"parameter_enable": 0,
					"patching_rect": [
						20,
						910,
						200,
						22
					],
					"id": "obj-84"
				}
			},
			{
				"box": {
					"maxclass": "comment",
					"text": "scale 2",
					"numinlets": 1,
					"numoutlets": 0,
					"patching_rect": [
						225,
						910,
						60,
						20
					],
					"id": "obj-85"
				}
			},
			{
				"box": {
					"maxclass": "newobj",
					"text": "prepend /ravemap/scale/2",
					"numinlets": 1,
					"numoutlets": 1,
					"outlettype": [
						""
					],
					"patching_rect": [
						290,
						910,
						150,
						22
					],
					"id": "obj-86"
				}
			},
			{
				"box": {
					"maxclass": "slider",
					"numinlets": 1,
					"numoutlets": 1,
					"outlettype": [
						""
					],
					"floatoutput": 1,
					"min": -4,
					"size": 8,
					"parameter_enable": 0,
					"patching_rect": [
						20,
						940,
						200,
						22
					],
					"id": "obj-87"
				}
			},
			{
				"box": {
					"maxclass": "comment",
					"text": "scale 3",
					"numinlets": 1,
					"numoutlets": 0,
					"patching_rect": [
						225,
						940,
						60,
						20
					],
					"id": "obj-88"
				}
			},
			{
				"box": {
					"maxclass": "newobj",
					"text": "prepend /ravemap/scale/3",
					"numinlets": 1,
					"numoutlets": 1,
					"outlettype": [
						""
					],
					"patching_rect": [
						290,
						940,
						150,
						22
					],
					"id": "obj-89"
				}
			},
			{
				"box": {
					"maxclass": "slider",
					"numinlets": 1,
					"numoutlets": 1,
					"outlettype": [
						""
					],
					"floatoutput": 1,
					"min": -4,
					"size": 8,
					"parameter_enable": 0,
					"patching_rect": [
						20,
						970,
						200,
						22
					],
					"id": "obj-90"
				}
			},
			{
				"box": {
					"maxclass": "comment",
					"text": "scale 4",
					"numinlets": 1,
					"numoutlets": 0,
					"patching_rect": [
						225,
						970,
						60,
						20
					],
					"id": "obj-91"
				}
			},
			{
				"box": {
					"maxclass": "newobj",
					"text": "prepend /ravemap/scale/4",
					"numinlets": 1,
					"numoutlets": 1,
					"outlettype": [
						""
					],
					"patching_rect": [
						290,
						970,
						150,
						22
					],
					"id": "obj-92"
				}
			},
			{
				"box": {
					"maxclass": "slider",
					"numinlets": 1,
					"numoutlets": 1,
					"outlettype": [
						""
					],
					"floatoutput": 1,
					"min": -4,
					"size": 8,
					"parameter_enable": 0,
					"patching_rect": [
						20,
						1000,
						200,
						22
					],
					"id": "obj-93"
				}
			},
			{
				"box": {
					"maxclass": "comment",
					"text": "scale 5",
					"numinlets": 1,
					"numoutlets": 0,
					"patching_rect": [
						225,
						1000,
						60,
						20
					],
					"id": "obj-94"
				}
			},
			{
				"box": {
					"maxclass": "newobj",
					"text": "prepend /ravemap/scale/5",
					"numinlets": 1,
					"numoutlets": 1,
					"outlettype": [
						""
					],
					"patching_rect": [
						290,
						1000,
						150,
						22
					],
					"id": "obj-95"
				}
			},
			{
				"box": {
					"maxclass": "slider",
					"numinlets": 1,
					"numoutlets": 1,
					"outlettype": [
						""
					],
					"floatoutput": 1,
					"min": -4,
					"size": 8,
					"parameter_enable": 0,
					"patching_rect": [
						20,
						1030,
						200,
						22
					],
					"id": "obj-96"
				}
			},
			{
				"box": {
					"maxclass": "comment",
					"text": "scale 6",
					"numinlets": 1,
					"numoutlets": 0,
					"patching_rect": [
						225,
						1030,
						60,
						20
					],
					"id": "obj-97"
				}
			},
			{
				"box": {
					"maxclass": "newobj",
					"text": "prepend /ravemap/scale/6",
					"numinlets": 1,
					"numoutlets": 1,
					"outlettype": [
						""
					],
					"patching_rect": [
						290,
						1030,
						150,
						22
					],
					"id": "obj-98"
				}
			},
			{
				"box": {
					"maxclass": "slider",
					"numinlets": 1,
					"numoutlets": 1,
					"outlettype": [
						""
					],
					"floatoutput": 1,
					"min": -4,
					"size": 8,
					"parameter_enable": 0,
					"patching_rect": [
						20,
						1060,
						200,
						22
					],
					"id": "obj-99"
				}
			},
			{
				"box": {
					"maxclass": "comment",
					"text": "scale 7",
					"numinlets": 1,
					"numoutlets": 0,
					"patching_rect": [
						225,
						1060,
						60,
						20
					],
					"id": "obj-100"
				}
			},
			{
				"box": {
					"maxclass": "newobj",
					"text": "prepend /ravemap/scale/7",
					"numinlets": 1,
					"numoutlets": 1,
					"outlettype": [
						""
					],
					"patching_rect": [
						290,
						1060,
						150,
						22
					],
					"id": "obj-101"
				}
			}
		],
		"lines": [
			{
				"patchline": {
					"source": [
						"obj-3",
						0
					],
					"destination": [
						"obj-8",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-4",
						0
					],
					"destination": [
						"obj-7",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-7",
						1
					],
					"destination": [
						"obj-8",
						1
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-7",
						0
					],
					"destination": [
						"obj-8",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-8",
						0
					],
					"destination": [
						"obj-9",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-9",
						0
					],
					"destination": [
						"obj-10",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-12",
						0
					],
					"destination": [
						"obj-14",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-14",
						0
					],
					"destination": [
						"obj-10",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-15",
						0
					],
					"destination": [
						"obj-17",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-17",
						0
					],
					"destination": [
						"obj-10",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-18",
						0
					],
					"destination": [
						"obj-20",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-20",
						0
					],
					"destination": [
						"obj-10",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-21",
						0
					],
					"destination": [
						"obj-23",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-23",
						0
					],
					"destination": [
						"obj-10",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-25",
						0
					],
					"destination": [
						"obj-29",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-27",
						0
					],
					"destination": [
						"obj-30",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-29",
						0
					],
					"destination": [
						"obj-10",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-30",
						0
					],
					"destination": [
						"obj-10",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-31",
						0
					],
					"destination": [
						"obj-10",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-32",
						0
					],
					"destination": [
						"obj-10",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-33",
						0
					],
					"destination": [
						"obj-10",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-35",
						0
					],
					"destination": [
						"obj-33",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-37",
						0
					],
					"destination": [
						"obj-38",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-38",
						0
					],
					"destination": [
						"obj-39",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-39",
						0
					],
					"destination": [
						"obj-40",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-40",
						0
					],
					"destination": [
						"obj-12",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-39",
						1
					],
					"destination": [
						"obj-41",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-41",
						0
					],
					"destination": [
						"obj-15",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-39",
						2
					],
					"destination": [
						"obj-42",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-42",
						0
					],
					"destination": [
						"obj-18",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-39",
						3
					],
					"destination": [
						"obj-43",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-43",
						0
					],
					"destination": [
						"obj-21",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-38",
						1
					],
					"destination": [
						"obj-44",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-44",
						0
					],
					"destination": [
						"obj-25",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-38",
						2
					],
					"destination": [
						"obj-45",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-45",
						0
					],
					"destination": [
						"obj-27",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-38",
						3
					],
					"destination": [
						"obj-48",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-48",
						0
					],
					"destination": [
						"obj-46",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-38",
						4
					],
					"destination": [
						"obj-49",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-49",
						0
					],
					"destination": [
						"obj-50",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-49",
						1
					],
					"destination": [
						"obj-52",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-38",
						5
					],
					"destination": [
						"obj-54",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-54",
						0
					],
					"destination": [
						"obj-52",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-38",
						6
					],
					"destination": [
						"obj-55",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-38",
						7
					],
					"destination": [
						"obj-56",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-58",
						0
					],
					"destination": [
						"obj-60",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-60",
						0
					],
					"destination": [
						"obj-10",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-61",
						0
					],
					"destination": [
						"obj-63",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-63",
						0
					],
					"destination": [
						"obj-10",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-64",
						0
					],
					"destination": [
						"obj-66",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-66",
						0
					],
					"destination": [
						"obj-10",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-67",
						0
					],
					"destination": [
						"obj-69",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-69",
						0
					],
					"destination": [
						"obj-10",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-70",
						0
					],
					"destination": [
						"obj-10",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-71",
						0
					],
					"destination": [
						"obj-73",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-73",
						0
					],
					"destination": [
						"obj-10",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-74",
						0
					],
					"destination": [
						"obj-76",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-76",
						0
					],
					"destination": [
						"obj-10",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-78",
						0
					],
					"destination": [
						"obj-80",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-80",
						0
					],
					"destination": [
						"obj-10",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-81",
						0
					],
					"destination": [
						"obj-83",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-83",
						0
					],
					"destination": [
						"obj-10",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-84",
						0
					],
					"destination": [
						"obj-86",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-86",
						0
					],
					"destination": [
						"obj-10",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-87",
						0
					],
					"destination": [
						"obj-89",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-89",
						0
					],
					"destination": [
						"obj-10",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-90",
						0
					],
					"destination": [
						"obj-92",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-92",
						0
					],
					"destination": [
						"obj-10",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-93",
						0
					],
					"destination": [
						"obj-95",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-95",
						0
					],
					"destination": [
						"obj-10",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-96",
						0
					],
					"destination": [
						"obj-98",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-98",
						0
					],
					"destination": [
						"obj-10",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-99",
						0
					],
					"destination": [
						"obj-101",
						0
					]
				}
			},
			{
				"patchline": {
					"source": [
						"obj-101",
						0
					],
					"destination": [
						"obj-10",
						0
					]
				}
			}
		]
	}
}
