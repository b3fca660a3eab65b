#!/bin/sh
# Install a built MedViewer folder for one user (default prefix ~/.local) or
# system-wide (prefix /usr/local or /opt, run as root):
#
#   ./install.sh [PREFIX]
#
# PREFIX/opt/MedViewer     the application folder (this folder, copied)
# PREFIX/bin/medviewer     a link to the executable, for the command line
# PREFIX/share/...         the menu entry and the icons (freedesktop layout)
set -eu

here=$(cd "$(dirname "$0")" && pwd)
prefix=${1:-"$HOME/.local"}
dest="$prefix/opt/MedViewer"

if [ ! -x "$here/MedViewer" ]; then
    echo "install.sh: run it from inside the built MedViewer folder" >&2
    exit 1
fi
if [ "$here" != "$dest" ]; then
    # Replace an earlier install, but never a folder that is not a MedViewer build.
    if [ -e "$dest" ] && [ ! -x "$dest/MedViewer" ]; then
        echo "install.sh: $dest exists and is not a MedViewer folder; not touching it" >&2
        exit 1
    fi
    rm -rf "$dest"
    mkdir -p "$prefix/opt"
    cp -a "$here" "$dest"
fi

mkdir -p "$prefix/bin" "$prefix/share/applications"
ln -sf "$dest/MedViewer" "$prefix/bin/medviewer"
(cd "$dest/share" && find icons -type f) | while read -r icon; do
    mkdir -p "$prefix/share/$(dirname "$icon")"
    cp "$dest/share/$icon" "$prefix/share/$icon"
done
# The menu runs the executable by its full path: PREFIX/bin is not on every
# desktop session's PATH.
sed "s|^Exec=medviewer|Exec=\"$dest/MedViewer\"|" "$dest/share/applications/medviewer.desktop" \
    > "$prefix/share/applications/medviewer.desktop"

# Refresh the menu and icon caches where the tools exist; desktops rescan anyway.
if command -v update-desktop-database >/dev/null 2>&1; then
    update-desktop-database -q "$prefix/share/applications" || true
fi
if command -v gtk-update-icon-cache >/dev/null 2>&1; then
    gtk-update-icon-cache -q -t "$prefix/share/icons/hicolor" || true
fi

echo "MedViewer installed in $dest"
echo "  command line: $prefix/bin/medviewer --help"
echo "  menu entry:   $prefix/share/applications/medviewer.desktop"
