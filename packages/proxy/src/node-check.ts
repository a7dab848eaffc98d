/**
 * The first import of the cb-sidecar and cb-lab bins: on a Node older than 22 undici fails while loading
 * (a TypeError from deep inside it), so say what is wrong in one line instead, before anything else loads.
 */
const major = Number(process.versions.node.split('.')[0]);
if (major < 22) {
  const bin = /(?:^|[\\/])cb-lab$|[\\/]lab[\\/]dist[\\/]main\.js$/.test(process.argv[1] ?? '')
    ? 'cb-lab'
    : 'cb-sidecar';
  process.stderr.write(
    `${bin}: needs Node >= 22 (Node 24 LTS is the target), this is ${process.versions.node}; ` +
      '`make` installs Node 24 into .tools/node when the system one is older: export PATH="$PWD/.tools/node/bin:$PATH"\n',
  );
  process.exit(1);
}
export {};
