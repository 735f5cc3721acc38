// The files actions/upload-artifact@v4 would upload for a multi-line `path:` input: the same
// @actions/glob package and the same options as its search step (implicit descendants, symlinks
// followed, broken ones omitted, hidden files excluded), directories dropped. One file per line.
// usage: node upload-files.mjs "<path lines>"
import * as glob from '@actions/glob';
import { statSync } from 'node:fs';

const globber = await glob.create(process.argv[2], {
  followSymbolicLinks: true,
  implicitDescendants: true,
  omitBrokenSymbolicLinks: true,
  excludeHiddenFiles: true,
});
for (const f of await globber.glob()) {
  if (!statSync(f).isDirectory()) console.log(f);
}
