// Package repocheck holds tests that keep the repository's references to
// itself honest. A reader of this repository must be able to follow every
// file a comment or a document points at, so the tests fail when:
//
//   - a comment or document names notes that live outside the repository
//     (the project's shared protocol, peer and style notes, or any path
//     into the shared directory beside the checkout) and the repository
//     has no file of that name;
//   - a path docs/NAME.md, anywhere, names a document that does not exist;
//   - a citation of a numbered section, such as
//     "docs/protocol.md, §8 Status frames", names a section number the
//     document lacks, or a title that is not that section's title;
//   - a relative Markdown link, or a backquoted repository path in a
//     Markdown file, points at a file or a heading that does not exist.
//
// The package has no code of its own; it exists for its tests.
package repocheck
