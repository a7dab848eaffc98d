/**
 * The first import of the bins (cb-sidecar, cb-lab, cb-policy): on a Node older than 22 undici fails while
 * loading (a TypeError from deep inside it), so say what is wrong in one line instead, before anything else loads.
 */
const BINS: Readonly<Record<string, string>> = { proxy: 'cb-sidecar', lab: 'cb-lab', policy: 'cb-policy' };

/** The bin's name from how it was started: its link (`.../cb-lab`) or its script (`packages/lab/dist/main.js`). */
function binName(script: string): string {
  const link = /(?:^|[\\/])(cb-(?:sidecar|lab|policy))$/.exec(script);
  if (link !== null) return link[1] as string;
  const dist = /[\\/]packages[\\/](proxy|lab|policy)[\\/]dist[\\/]main\.js$/.exec(script);
  return dist !== null ? (BINS[dist[1] as string] as string) : 'cb-sidecar';
}

const major = Number(process.versions.node.split('.')[0]);
if (major < 22) {
  process.stderr.write(
    `${binName(process.argv[1] ?? '')}: needs Node >= 22 (Node 24 LTS is the target), this is ${process.versions.node}; ` +
      '`make` in the repository installs Node 24 into .tools/node when the system one is older: ' +
      'export PATH="<repository>/.tools/node/bin:$PATH"\n',
  );
  process.exit(1);
}
export {};
