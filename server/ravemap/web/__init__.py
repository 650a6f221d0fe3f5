"""The control page: `ravemap serve` serves a small web app (`ravemap.web.server`) that any browser
on the network opens to play: an XY pad, the latent faders, record / train / run, the pickers and
a picture of the learned mapping. The page (`static/`) is plain HTML, CSS and JavaScript shipped
in the package: nothing is fetched from anywhere else, and nothing needs building."""
