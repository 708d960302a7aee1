import { readFileSync } from 'node:fs';

// What a package user reads on the registry: the package's README and package.json. It must stand
// on its own, outside the repository: links are absolute, no repository-internal paths.

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as Record<string, any>;
const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');

describe("the package's README and metadata", () => {
  it('names the repository, the hosted guide and where to report bugs', () => {
    expect(pkg.repository).toMatchObject({ type: 'git', directory: 'libs/warren' });
    expect(pkg.homepage).toMatch(/^https:\/\//);
    expect(pkg.bugs?.url).toMatch(/^https:\/\//);
    expect(pkg.files).toEqual(expect.arrayContaining(['README.md', 'CHANGELOG.md']));
  });

  it('gives the install line with the peers that a Nest app does not already have', () => {
    expect(readme).toContain('npm i nestjs-warren amqplib amqp-connection-manager');
  });

  it('links only to absolute addresses, and cites no path of the repository', () => {
    const links = [...readme.matchAll(/\]\(([^)]+)\)/g)].map((m) => m[1]);
    expect(links.length).toBeGreaterThan(0);
    for (const link of links) expect(link).toMatch(/^https:\/\//);
    const prose = readme.replace(/\]\([^)]+\)/g, ']');
    expect(prose).not.toMatch(/(^|[\s`(])(\.\.?\/|src\/|test\/|libs\/|docs\/)/m);
  });

  it('says WarrenModule is global', () => {
    expect(readme).toMatch(/`WarrenModule` is global/);
  });
});
